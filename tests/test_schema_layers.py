"""The one-way rule holds for the schema too: no relation points up a layer."""

from django.apps import apps

# Highest first, as the import contract in pyproject.toml orders the domains.
DOMAIN_LAYERS = [{"students"}, {"trainers", "homepage"}]


def _layer(app_label: str) -> int | None:
    return next((i for i, layer in enumerate(DOMAIN_LAYERS) if app_label in layer), None)


def test_no_relation_points_to_a_higher_or_sibling_domain():
    upward = []
    for model in apps.get_models():
        own = _layer(model._meta.app_label)
        if own is None:
            continue
        for field in model._meta.get_fields(include_hidden=True):
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            target = field.related_model._meta.app_label
            other = _layer(target)
            if target != model._meta.app_label and other is not None and other <= own:
                upward.append(
                    f"{model._meta.label}.{field.name} -> {field.related_model._meta.label}"
                )
    assert upward == []
