"""The documents tell the truth: the settings, error codes and links they name exist.

Reads ``README.md`` and ``docs/*.md`` as text and the code as text or syntax
trees; needs no database, no Redis and no server.

- A *settings table* is a table whose first header cell is ``setting`` (or
  ``switch``, the runbook's): each row names one setting, in backticks, in its
  first cell, and each must be an environment variable the settings
  (``config/settings/*.py``, ``gunicorn.conf.py``) read. Every variable they
  read is a row of a settings table in ``docs/settings.md``.
- A *variables table* (first header cell ``variable``) names what the scripts
  and tests read; each file its second cell names must read the variable.
- Any other environment-variable-looking name in backticks must be one of
  those, an error code, or one of ``NOT_SETTINGS``.
- The *error-code table* (first header cell ``code``) lists exactly the codes
  the application sends: each a member of ``ErrorCode`` used outside its
  definition, and every such member listed.
- Every relative link resolves (file and heading); none leaves the repository.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS_DIR = ROOT / "docs"
DOCUMENTS = [README, *sorted(DOCS_DIR.glob("*.md"))]
SETTINGS_DOC = DOCS_DIR / "settings.md"
SETTINGS_SOURCES = [*sorted((ROOT / "config" / "settings").glob("*.py")), ROOT / "gunicorn.conf.py"]
APP_PACKAGES = ("api", "aggregation", "caching", "homepage", "trainers", "students", "config")

# The specification's four names keep its units; two other projects' names say theirs.
SPEC_UNITS = {
    "CACHE_TTL": "s",
    "CACHE_WARMING_INTERVAL": "ms",
    "QUERY_TIMEOUT": "ms",
    "REQUEST_TIMEOUT": "ms",
}
FOREIGN_DURATIONS = {"WEB_TIMEOUT": "s", "DJANGO_SECURE_HSTS_SECONDS": "s"}
# Names the documents may mention that are not ours to read.
NOT_SETTINGS = {
    "DATA_UPLOAD_MAX_MEMORY_SIZE",  # Django's own setting, left at its default
    "PROMETHEUS_MULTIPROC_DIR",  # read by prometheus_client and django-prometheus
    "REMOTE_ADDR",  # the WSGI environment's client address
}

ENV_NAME = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"
ENV_READ = re.compile(
    r"(?:\benv(?:\.\w+)?|\bos\.environ(?:\.get|\.setdefault)?|\bos\.getenv)"
    rf"\(\s*[\"']({ENV_NAME})[\"']"
    rf"|\bos\.environ\[\s*[\"']({ENV_NAME})[\"']\s*\]"
)
FENCE = re.compile(r"^```.*?^```[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
ONE_NAME = re.compile(rf"`({ENV_NAME}|[A-Z][A-Z0-9]*)`")


@pytest.fixture(autouse=True)
def _clean_redis():
    """The suite's Redis clean-up is not needed: nothing here touches Redis."""
    yield


@pytest.fixture(autouse=True)
def _give_back_worker_connections():
    """Nor a test database (the suite's session fixture would create one)."""
    yield


# --- reading the documents ------------------------------------------------------


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub("", text)


def _cells(line: str) -> list[str]:
    """The cells of a table row; a ``|`` inside backticks does not split."""
    cells, current, in_code = [], "", False
    for char in line.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(current.strip())
            current = ""
        else:
            current += char
    cells.append(current.strip())
    return cells


def _tables(path: Path) -> list[tuple[list[str], list[list[str]]]]:
    """Every table outside fenced code: its header cells and its rows' cells."""
    found: list[tuple[list[str], list[list[str]]]] = []
    block: list[str] = []
    for line in [*_prose(path.read_text()).splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2 and re.fullmatch(r"\|[\s|:-]+\|", block[1].strip()):
            found.append((_cells(block[0]), [_cells(row) for row in block[2:]]))
        block = []
    return found


def _first_column(path: Path, *headers: str) -> list[tuple[str, list[str]]]:
    """``(name, row)`` for every row of the tables whose first header is one of ``headers``.

    Each such row must name exactly one thing, in backticks, in its first cell.
    """
    rows = []
    for header, body in _tables(path):
        if header[0].lower() not in headers:
            continue
        for row in body:
            match = ONE_NAME.fullmatch(row[0])
            assert match, f"{path.name}: a {header[0]} row names one name in backticks: {row[0]!r}"
            rows.append((match.group(1), row))
    return rows


def _documented_settings() -> dict[str, list[str]]:
    """Every setting a settings table names, with the documents naming it."""
    named: dict[str, list[str]] = {}
    for path in DOCUMENTS:
        for name, _ in _first_column(path, "setting", "switch"):
            named.setdefault(name, []).append(path.name)
    return named


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _prose(path.read_text()), re.MULTILINE):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


# --- reading the code -------------------------------------------------------------


def _settings_read() -> set[str]:
    """The environment variables the settings modules and gunicorn.conf.py read."""
    names: set[str] = set()
    for path in SETTINGS_SOURCES:
        for match in ENV_READ.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


def _app_modules() -> list[Path]:
    return [p for package in APP_PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]


def _error_codes() -> tuple[set[str], set[str]]:
    """The members of ``ErrorCode`` (wherever it lives), and those the code uses."""
    members: set[str] = set()
    used: set[str] = set()
    definitions: set[int] = set()  # ids of the members' own value nodes
    trees = [ast.parse(path.read_text()) for path in _app_modules()]
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == "ErrorCode":
                for statement in node.body:
                    if isinstance(statement, ast.Assign):
                        members.update(t.id for t in statement.targets if isinstance(t, ast.Name))
                        definitions.add(id(statement.value))
    assert members, "class ErrorCode not found in the application packages"
    for tree in trees:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "ErrorCode"
            ):
                used.add(node.attr)
            elif (
                isinstance(node, ast.Constant)
                and id(node) not in definitions
                and isinstance(node.value, str)
                and node.value in members
            ):
                used.add(node.value)
    return members, used & members


# --- the tests --------------------------------------------------------------------


def test_every_documented_setting_is_read_by_the_settings():
    read = _settings_read()
    documented = _documented_settings()
    assert documented, "no settings tables found"
    unknown = {name: docs for name, docs in documented.items() if name not in read}
    assert not unknown, f"documented as settings but never read: {unknown}"


def test_every_setting_read_is_in_the_settings_reference():
    in_reference = {name for name, _ in _first_column(SETTINGS_DOC, "setting")}
    missing = _settings_read() - in_reference
    assert not missing, f"read by the settings but not in docs/settings.md: {sorted(missing)}"


def test_settings_units_follow_the_naming_rule():
    for name, row in _first_column(SETTINGS_DOC, "setting"):
        unit = row[2].strip() if len(row) > 2 else ""
        expected = SPEC_UNITS.get(name) or FOREIGN_DURATIONS.get(name)
        if expected is None and name.endswith("_MS"):
            expected = "ms"
        elif expected is None and name.endswith("_S"):
            expected = "s"
        if expected is not None:
            assert unit == expected, f"{name}: unit {unit!r}, its name says {expected!r}"
        else:
            assert unit not in ("s", "ms"), f"{name} is a duration but its name has no unit"


def test_script_variables_are_read_where_the_docs_say():
    rows = _first_column(SETTINGS_DOC, "variable")
    assert rows, "no variables table in docs/settings.md"
    for name, row in rows:
        readers = re.findall(r"`([^`]+)`", row[1])
        assert readers, f"{name}: the table names no file that reads it"
        for reader in readers:
            path = ROOT / reader
            assert path.is_file(), f"{name}: {reader} does not exist"
            assert name in path.read_text(), f"{name}: {reader} does not read it"


def test_every_variable_named_anywhere_is_known():
    members, _ = _error_codes()
    variables = {name for name, _ in _first_column(SETTINGS_DOC, "variable")}
    known = _settings_read() | variables | members | NOT_SETTINGS
    for path in DOCUMENTS:
        text = path.read_text()
        names = {
            name
            for span in INLINE_CODE.findall(_prose(text))
            for name in re.findall(rf"(?<![\w.]){ENV_NAME}(?![\w(])", span)
        }
        names |= {
            name
            for block in FENCE.findall(text)
            for name in re.findall(rf"(?<![\w.])({ENV_NAME})=", block)
        }
        unknown = names - known
        assert not unknown, f"{path.name} names what no setting or script reads: {sorted(unknown)}"


def test_the_error_codes_listed_are_the_ones_sent():
    members, used = _error_codes()
    listed = {name for path in DOCUMENTS for name, _ in _first_column(path, "code")}
    assert listed, "no error-code table found"
    assert listed <= members, f"listed but not in ErrorCode: {sorted(listed - members)}"
    assert listed <= used, f"listed but never sent: {sorted(listed - used)}"
    assert used <= listed, f"sent but not listed: {sorted(used - listed)}"


def test_every_relative_link_resolves_and_none_leaves_the_repository():
    for path in DOCUMENTS + [ROOT / "bench" / "README.md"]:
        for target in LINK.findall(_prose(path.read_text())):
            assert not re.match(r"[a-zA-Z][\w+.-]*:|//", target), f"{path.name}: {target}"
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            assert linked.exists(), f"{path.name}: {target} does not exist"
            assert ROOT in linked.parents or linked == ROOT, f"{path.name}: {target} leaves"
            if anchor:
                assert linked.suffix == ".md", f"{path.name}: {target}"
                assert anchor in _anchors(linked), f"{path.name}: no heading for {target}"


def test_the_readme_contents_list_its_sections_in_order():
    text = _prose(README.read_text())
    contents = text.split("## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- \[[^\]]+\]\(#([^)]+)\)", contents, re.MULTILINE)
    after = text.split("## Contents\n", 1)[1]
    sections = [_slug(h) for h in re.findall(r"^## (.+)$", after, re.MULTILINE)]
    assert listed == sections


def test_the_readme_links_every_document_and_stays_short():
    text = README.read_text()
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in LINK.findall(text)}
    unlinked = [p.name for p in DOCS_DIR.glob("*.md") if p.resolve() not in linked]
    assert not unlinked, f"docs not linked from the README: {unlinked}"
    assert len(text.splitlines()) <= 250
