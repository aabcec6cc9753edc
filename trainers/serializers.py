"""Output shapes of the trainer bootstrap (also its OpenAPI schemas) and mutation inputs."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from api.serializers import IdField, StrIdMixin

from .models import (
    Allocation,
    Course,
    PayoutClaim,
    Session,
    Trainer,
    TrainerDocument,
    TrainerPerformance,
)


class TrainerProfileSerializer(StrIdMixin, serializers.ModelSerializer):
    userId = serializers.CharField(source="user_id")
    hourlyRate = serializers.FloatField(source="hourly_rate")
    isActive = serializers.BooleanField(source="is_active")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = Trainer
        fields = [
            "id", "userId", "name", "email", "phone", "bio", "avatar", "specialties",
            "hourlyRate", "currency", "isActive", "updatedAt",
        ]  # fmt: skip


class TrainerPerformanceSerializer(serializers.ModelSerializer):
    sessionsCompleted = serializers.IntegerField(source="sessions_completed")
    sessionsCancelled = serializers.IntegerField(source="sessions_cancelled")
    sessionsNoShow = serializers.IntegerField(source="sessions_no_show")
    hoursDelivered = serializers.SerializerMethodField()
    ratingAverage = serializers.FloatField(source="rating_average", allow_null=True)
    ratingCount = serializers.IntegerField(source="rating_count")
    earningsTotal = serializers.FloatField(source="earnings_total")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = TrainerPerformance
        fields = [
            "sessionsCompleted", "sessionsCancelled", "sessionsNoShow", "hoursDelivered",
            "ratingAverage", "ratingCount", "earningsTotal", "updatedAt",
        ]  # fmt: skip

    def get_hoursDelivered(self, obj: TrainerPerformance) -> float:
        return round(obj.minutes_delivered / 60, 2)


class TrainerDocumentSerializer(StrIdMixin, serializers.ModelSerializer):
    uploadedAt = serializers.DateTimeField(source="uploaded_at")
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)

    class Meta:
        model = TrainerDocument
        fields = ["id", "kind", "title", "url", "status", "uploadedAt", "expiresAt"]


class LocationSerializer(serializers.Serializer):
    address = serializers.CharField()
    city = serializers.CharField()
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    serviceRadiusKm = serializers.IntegerField(source="service_radius_km")


class TrainerOverviewSerializer(serializers.Serializer):
    profile = TrainerProfileSerializer()
    performance = TrainerPerformanceSerializer()
    documents = TrainerDocumentSerializer(many=True)
    location = LocationSerializer()


class PersonSummarySerializer(StrIdMixin):
    name = serializers.CharField()
    avatar = serializers.CharField()


class CourseSummarySerializer(StrIdMixin, serializers.ModelSerializer):
    totalSessions = serializers.IntegerField(source="total_sessions")
    sessionMinutes = serializers.IntegerField(source="session_minutes")

    class Meta:
        model = Course
        fields = ["id", "title", "level", "totalSessions", "sessionMinutes"]


class SessionSerializer(StrIdMixin, serializers.ModelSerializer):
    allocationId = serializers.CharField(source="allocation_id")
    trainer = PersonSummarySerializer()
    student = PersonSummarySerializer()
    course = CourseSummarySerializer(source="allocation.course")
    scheduledAt = serializers.DateTimeField(source="scheduled_at")
    durationMinutes = serializers.IntegerField(source="duration_minutes")
    studentConfirmed = serializers.SerializerMethodField()
    studentConfirmedAt = serializers.DateTimeField(source="student_confirmed_at", allow_null=True)
    completedAt = serializers.DateTimeField(source="completed_at", allow_null=True)
    cancelledAt = serializers.DateTimeField(source="cancelled_at", allow_null=True)
    cancelReason = serializers.CharField(source="cancel_reason")

    class Meta:
        model = Session
        fields = [
            "id", "allocationId", "trainer", "student", "course", "scheduledAt",
            "durationMinutes", "status", "studentConfirmed", "studentConfirmedAt",
            "completedAt", "cancelledAt", "cancelReason", "rating",
        ]  # fmt: skip

    def get_studentConfirmed(self, obj: Session) -> bool:
        return obj.student_confirmed_at is not None


class AllocationSerializer(StrIdMixin, serializers.ModelSerializer):
    trainer = PersonSummarySerializer()
    student = PersonSummarySerializer()
    course = CourseSummarySerializer()
    sessionsTotal = serializers.IntegerField(source="sessions_total")
    sessionsUsed = serializers.IntegerField(source="sessions_used")
    sessionsRemaining = serializers.SerializerMethodField()
    startDate = serializers.DateField(source="start_date", allow_null=True)
    endDate = serializers.DateField(source="end_date", allow_null=True)
    approvedAt = serializers.DateTimeField(source="approved_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Allocation
        fields = [
            "id", "trainer", "student", "course", "status", "schedule", "sessionsTotal",
            "sessionsUsed", "sessionsRemaining", "startDate", "endDate", "notes",
            "approvedAt", "createdAt",
        ]  # fmt: skip

    def get_sessionsRemaining(self, obj: Allocation) -> int:
        return max(obj.sessions_total - obj.sessions_used, 0)


class PayoutClaimSerializer(StrIdMixin, serializers.ModelSerializer):
    trainerId = serializers.CharField(source="trainer_id")
    amount = serializers.FloatField()
    sessionIds = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    decidedAt = serializers.DateTimeField(source="decided_at", allow_null=True)

    class Meta:
        model = PayoutClaim
        fields = [
            "id", "trainerId", "amount", "currency", "status", "sessionIds", "note",
            "createdAt", "decidedAt",
        ]  # fmt: skip

    def get_sessionIds(self, obj: PayoutClaim) -> list[str]:
        return [str(c.session_id) for c in obj.claimed.all()]


# --- mutation inputs ------------------------------------------------------------------

MAX_SESSIONS_PER_ALLOCATION = 500


class SessionCreateSerializer(serializers.Serializer):
    allocationId = IdField()
    scheduledAt = serializers.DateTimeField()
    durationMinutes = serializers.IntegerField(min_value=15, max_value=480, required=False)


class SessionCompleteSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5, required=False)
    feedback = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


class AllocationCreateSerializer(serializers.Serializer):
    trainerId = IdField()
    studentId = IdField()
    courseId = IdField()
    sessionsTotal = serializers.IntegerField(
        min_value=1, max_value=MAX_SESSIONS_PER_ALLOCATION, required=False
    )
    schedule = serializers.DictField(required=False)
    startDate = serializers.DateField(required=False)
    endDate = serializers.DateField(required=False)
    notes = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("startDate"), attrs.get("endDate")
        if start and end and end < start:
            raise serializers.ValidationError({"endDate": "Must not be before startDate."})
        return attrs


class AllocationStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Allocation.Status.choices)


class PayoutClaimCreateSerializer(serializers.Serializer):
    trainerId = IdField(required=False)
    sessionIds = serializers.ListField(
        child=IdField(),
        min_length=1,
        max_length=200,
    )
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)


class PayoutClaimStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=PayoutClaim.Status.choices)


class _Changes(serializers.Serializer):
    """A partial update: at least one field; validated data is keyed by model field names."""

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Send at least one field to change.")
        return attrs


class TrainerProfileUpdateSerializer(_Changes):
    name = serializers.CharField(max_length=200, required=False)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    bio = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    avatar = serializers.URLField(max_length=500, required=False, allow_blank=True)
    specialties = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=30, required=False
    )
    hourlyRate = serializers.DecimalField(
        source="hourly_rate",
        max_digits=8,
        decimal_places=2,
        min_value=Decimal("0"),
        required=False,
    )
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    latitude = serializers.FloatField(min_value=-90, max_value=90, required=False)
    longitude = serializers.FloatField(min_value=-180, max_value=180, required=False)
    serviceRadiusKm = serializers.IntegerField(
        source="service_radius_km", min_value=0, max_value=500, required=False
    )


class TrainerPerformanceUpdateSerializer(_Changes):
    """Staff corrections to the running figures."""

    sessionsCompleted = serializers.IntegerField(
        source="sessions_completed", min_value=0, max_value=10**7, required=False
    )
    sessionsCancelled = serializers.IntegerField(
        source="sessions_cancelled", min_value=0, max_value=10**7, required=False
    )
    sessionsNoShow = serializers.IntegerField(
        source="sessions_no_show", min_value=0, max_value=10**7, required=False
    )
    minutesDelivered = serializers.IntegerField(
        source="minutes_delivered", min_value=0, max_value=10**9, required=False
    )
    earningsTotal = serializers.DecimalField(
        source="earnings_total",
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0"),
        required=False,
    )
