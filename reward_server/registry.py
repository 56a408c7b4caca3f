"""The one table of answer types.

Each row names a verifier module (see `reward_server.verifiers`) and says what the
reference `answer` must look like. Modules are imported on first use, so rendering
libraries are only loaded where they are needed. The HTTP schema, `/answer-types` and the
CLI choices are all derived from this table.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import math
import threading
import types as pytypes
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from reward_server.types import canonical_json


@dataclass(frozen=True)
class VerifierSpec:
    name: str
    module: str
    expects: str
    description: str
    # Option defaults that differ from the module's (one module can serve two names).
    defaults: tuple[tuple[str, Any], ...] = ()
    # An explicit verifier version for cache keys; None: a hash of the verifier's code.
    version: str | None = None

    def load(self) -> pytypes.ModuleType:
        # A lookup first: import_module's own checks cost more than a verifier's extract.
        # Not sys.modules: while one thread imports a verifier, the module is there half
        # made, and another thread (extraction runs on worker threads) must wait for it,
        # which import_module does.
        module = _LOADED.get(self.module)
        if module is None:
            module = _LOADED[self.module] = importlib.import_module(self.module)
        return module

    @property
    def code_version(self) -> str:
        """What cache keys carry so that a changed verifier never reads old verdicts."""
        return self.version if self.version is not None else source_version(self.module)


# The verifier modules whose import has finished, by name (`VerifierSpec.load`).
_LOADED: dict[str, pytypes.ModuleType] = {}


# `ast.parse` from several threads at once can fail in CPython 3.11 ("AST constructor
# recursion depth mismatch"): engines extract (and so key) items on worker threads.
_VERSION_LOCK = threading.Lock()


_VERSIONS: dict[str, str] = {}


def source_version(module: str) -> str:
    """`_source_version`, computed once per module (one thread at a time), then a lookup."""
    version = _VERSIONS.get(module)
    if version is None:
        with _VERSION_LOCK:
            version = _VERSIONS.get(module) or _source_version(module)
            _VERSIONS[module] = version
    return version


def _source_version(module: str) -> str:
    """A hash of a module's source and of every module of its own packages it imports.

    Read with `ast`, without importing the modules (only their parent packages): a
    verifier whose code, or whose helpers' code, changes gets a new version. Imports
    outside the module's top-level package and `reward_server` (libraries) are not
    followed; pin those in pyproject.toml. Deterministic: replicas built from the same
    code agree on it.
    """
    roots = {"reward_server", module.split(".")[0]}
    digest = hashlib.blake2b(digest_size=8)
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        with open(spec.origin, "rb") as source:
            text = source.read()
        digest.update(name.encode() + b"\x00" + text + b"\x00")
        todo.extend(_imported_modules(text, roots))
    return digest.hexdigest()


def _imported_modules(source: bytes, roots: set[str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_module(alias.name, roots)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            spec = _find(node.module, roots)
            if spec is None:
                continue
            found.append(node.module)
            if spec.submodule_search_locations is not None:
                # `from reward_server import browser` may name a module, not an attribute
                found += [f"{node.module}.{alias.name}" for alias in node.names
                          if _is_module(f"{node.module}.{alias.name}", roots)]
    return found


def _find(name: str, roots: set[str]) -> importlib.machinery.ModuleSpec | None:
    """The spec of a module of ours (imports its parent packages only, never the module)."""
    if name.split(".")[0] not in roots:
        return None
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _is_module(name: str, roots: set[str]) -> bool:
    return _find(name, roots) is not None


_SPECS: dict[str, VerifierSpec] = {}


def register(spec: VerifierSpec) -> VerifierSpec:
    """Add an answer type. A name can be registered once: a second one is a bug."""
    if spec.name in _SPECS:
        raise ValueError(f"answer type {spec.name!r} is already registered ({_SPECS[spec.name]})")
    _SPECS[spec.name] = spec
    _build_options.cache_clear()
    return spec


def unregister(name: str) -> None:
    """Remove an answer type; its module is forgotten once no answer type uses it, so a
    later registration of that module imports it again (a test's module, changed)."""
    spec = _SPECS.pop(name, None)
    if spec is not None and all(other.module != spec.module for other in _SPECS.values()):
        _LOADED.pop(spec.module, None)
    _build_options.cache_clear()


def get(name: str) -> VerifierSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise KeyError(f"unknown answer_type {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    return sorted(_SPECS)


def is_registered(name: str) -> bool:
    return name in _SPECS


class OptionsError(ValueError):
    """A request's `options` do not fit the verifier; `field` names the offending key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def build_options(name: str, raw: dict[str, Any] | None) -> Any:
    """The verifier's frozen `Options` from a request's `options` dict, validated.

    Unknown keys are refused here (pydantic ignores extra keys of a dataclass). Options
    are frozen, so one object serves every item with the same name and knobs: a batch
    (validated by the HTTP layer, then used by the engine) pays for validation once.
    """
    return _build_options(name, canonical_json(raw) if raw else "{}")


@lru_cache(maxsize=4096)
def _build_options(name: str, raw_json: str) -> Any:
    raw: dict[str, Any] = json.loads(raw_json)
    options_cls = get(name).load().Options
    known = {f.name for f in dataclasses.fields(options_cls)}
    for key in raw:
        if key not in known:
            raise OptionsError(key, f"unknown option for {name}; known: {', '.join(sorted(known))}")
    # Before the type check: an Options' own __post_init__ checks would otherwise see a NaN
    # first and blame the whole `options` instead of the field.
    bounds = {f.name: f.metadata.get("bounds", {}) for f in dataclasses.fields(options_cls)}
    for key, value in raw.items():
        problem = number_problem(_as_number(value), bounds[key])
        if problem is not None:
            raise OptionsError(key, problem)
    try:
        return _adapter(options_cls).validate_python({**dict(get(name).defaults), **raw})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "options"
        raise OptionsError(field, first["msg"]) from None


def _as_number(value: Any) -> Any:
    """A string the type check would read as a number ("nan", "1e309"), as that number."""
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


_BOUND_TESTS = {
    "ge": (lambda value, bound: value >= bound, ">="),
    "gt": (lambda value, bound: value > bound, ">"),
    "le": (lambda value, bound: value <= bound, "<="),
    "lt": (lambda value, bound: value < bound, "<"),
}


def number_problem(value: Any, bounds: dict[str, float]) -> str | None:
    """Why a numeric option value is refused (not finite, or outside `bounds`), or None.

    Values that are not numbers (None, text, bools) are left to the type check.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value):
        return f"must be a finite number, not {value}"
    for kind, bound in bounds.items():
        holds, symbol = _BOUND_TESTS[kind]
        if not holds(value, bound):
            return f"must be {symbol} {bound}, not {value}"
    return None


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(options_cls: type) -> TypeAdapter[Any]:
    if options_cls not in _ADAPTERS:
        _ADAPTERS[options_cls] = TypeAdapter(options_cls)
    return _ADAPTERS[options_cls]


def describe() -> list[dict[str, Any]]:
    """The registry as data: name, what `answer` should be, and each option's default."""
    rows = []
    for name in names():
        spec = _SPECS[name]
        options_cls = spec.load().Options
        rows.append(
            {
                "name": name,
                "description": spec.description,
                "expects": spec.expects,
                "options": {
                    f.name: {
                        "default": dict(spec.defaults).get(f.name, f.default),
                        "type": str(f.type),
                        "help": f.metadata.get("help", ""),
                        "bounds": dict(f.metadata.get("bounds", {})),
                    }
                    for f in dataclasses.fields(options_cls)
                },
            }
        )
    return rows


# ---------------------------------------------------------------------------------------
# The table. Keep one row per answer type; the names are the recipe's `answer_type`s.
# ---------------------------------------------------------------------------------------
_V = "reward_server.verifiers."

# -- choice, counting, yes/no, text and boxes --
register(VerifierSpec("multiple-choice", _V + "multiple_choice",
                      "the gold letter (A, B, ...) or, with `choices`, the option text",
                      "Choice accuracy: one option letter (or its text) must match the gold."))
register(VerifierSpec("number", _V + "number",
                      "a number or numeric string (a list gives several acceptable counts)",
                      "Counting: the last number stated equals the gold, as a number."))
register(VerifierSpec("boolean", _V + "boolean",
                      "yes/no/true/false (or a bool)",
                      "Yes/no as whole words; hedges and unknowns score 0."))
register(VerifierSpec("ocrtext", _V + "ocrtext",
                      "a string or a list of acceptable strings",
                      "ANLS (1 - normalized Levenshtein, 0 below 0.5), best over golds."))
register(VerifierSpec("bbox", _V + "bbox",
                      "[x1, y1, x2, y2] (or a list of such boxes, or a polygon)",
                      "IoU between the predicted and the reference box."))
register(VerifierSpec("any", _V + "exact",
                      "a string (or a list of acceptable strings)",
                      "Case-insensitive exact match after trimming.",
                      defaults=(("case_sensitive", False),)))
register(VerifierSpec("critic", _V + "exact",
                      "a string (or a list of acceptable strings)",
                      "Exact match after trimming.",
                      defaults=(("case_sensitive", True),)))

# -- math --
register(VerifierSpec("math-expressions", _V + "math_expressions",
                      "a LaTeX or plain math answer (a list gives several acceptable ones); "
                      "a letter gold is matched as a multiple-choice answer",
                      "Math equivalence: plain numbers exactly, then Math-Verify (sympy) on the "
                      "answers read as LaTeX."))

# -- coding: SVG and HTML, rendered --
register(VerifierSpec("svg-code", _V + "svg_code",
                      "the reference SVG source (a list gives several acceptable drawings)",
                      "Renders both SVGs (cairosvg, `size` pixels square on white): "
                      "foreground-aware SSIM "
                      "x foreground IoU, with the recipe's token/tag Jaccard weighted by it."))

register(VerifierSpec("html-code", _V + "html_code",
                      "the reference HTML page source (a list gives several acceptable pages)",
                      "Renders both pages in headless Chromium: 0.45 screenshot similarity + "
                      "0.45 visible-text similarity + 0.1 the recipe's token/tag Jaccard."))

# -- coding: programs, run --
register(VerifierSpec("general-code", _V + "general_code",
                      "a JSON document of tests: {\"inputs\": [stdin, ...], \"outputs\": "
                      "[stdout, ...]} (add \"fn_name\" for call-based tests) or "
                      "{\"tests\": \"assert ...\", \"setup\": \"...\"} (or a list of "
                      "assert strings)",
                      "Runs the Python program against the tests in a bubblewrap sandbox: 1.0 "
                      "when all pass (or the fraction, with partial_credit)."))

# -- end of table --
