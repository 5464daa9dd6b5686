"""The CLI agrees with what it talks to: every request its clients make, and every wire type they
read, against each service's OpenAPI document (built in-process from the app factories); every
event type its help and examples name, against the event catalogue.

Nothing here is a copy of the contract: the requests are observed (each public client method is
called against a mock transport), the type a request's answer is read as is the method's return
annotation, and the documents come from the services' own code.
"""

from __future__ import annotations

import asyncio
import collections.abc
import dataclasses
import inspect
import io
import json
import logging
import mimetypes
import re
import types
from collections.abc import Iterator
from typing import (
    IO,
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

import httpx
import pytest
import typer.main

from conveyor_cli import client, schemas
from conveyor_cli.commands import keys
from conveyor_cli.main import app
from services.audit.app import create_audit_app
from services.clean.app import create_clean_app
from services.ingest.app import create_ingest_app
from services.labeling_dispatch.app import create_labeling_app
from services.qc.app import create_qc_app
from shared.events import EVENT_TYPES

Doc = dict[str, Any]

# Places where the service declares a free-form object, so a client type there cannot be checked
# against the document: clean's DuplicateGroup.copies is list[dict[str, Any]] on the server. When
# the service types it, this entry fails the test and the client type gets checked.
FREE_FORM = {"DuplicateGroup.copies[]"}


@pytest.fixture(scope="module")
def documents() -> Iterator[dict[str, Doc]]:
    """Each service's OpenAPI document. Building an app connects to nothing (its lifespan
    does), but it installs the service's JSON log handler, which is put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        docs = {
            "ingest": create_ingest_app().openapi(),
            "clean": create_clean_app().openapi(),
            "audit": create_audit_app().openapi(),
            "labeling": create_labeling_app().openapi(),
            "qc": create_qc_app().openapi(),
        }
    finally:
        root.handlers, root.level = handlers, level
    yield docs


# --------------------------------------------------------------------------- observed requests


@dataclasses.dataclass
class ClientCall:
    """One public client method, called once against a mock transport."""

    name: str
    service: str
    hints: dict[str, Any]
    requests: list[httpx.Request]


def _client_classes() -> list[type]:
    # Every client declares the service it talks to; errors carry it per instance only.
    return [
        cls
        for cls in vars(client).values()
        if inspect.isclass(cls)
        and cls.__module__ == client.__name__
        and not cls.__name__.startswith("_")
        and isinstance(vars(cls).get("service"), str)
    ]


def _sample(tp: Any) -> Any:
    """A value of type ``tp`` for a call's argument (every optional part filled in)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return None if get_origin(inner[0]) is collections.abc.Callable else _sample(inner[0])
    if is_typeddict(tp):
        return {k: _sample(v) for k, v in get_type_hints(tp).items()}
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        return tp(**{f.name: _sample(hints[f.name]) for f in dataclasses.fields(tp)})
    if origin is Literal:
        return args[0]
    if origin in (list, collections.abc.Sequence):
        return [_sample(args[0])]
    if origin is dict:
        return {"k": _sample(args[1])}
    if tp is IO or origin is IO:
        return io.BytesIO(b"x")
    samples = {str: "x", int: 1, float: 1.0, bool: True}
    return samples[tp]


def _answer(request: httpx.Request) -> httpx.Response:
    # One body every method can digest: a page, a lookup, and one upload item per file sent.
    files = request.content.count(b'name="files"')
    return httpx.Response(200, json={"items": [{}] * files, "next_cursor": None, "known": {}})


def _call(cls: type, name: str) -> ClientCall:
    fn = vars(cls)[name]
    hints = get_type_hints(fn)
    params = list(inspect.signature(fn).parameters.values())[1:]
    args = {p.name: _sample(hints[p.name]) for p in params}
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return _answer(request)

    instance = cls("http://service.test", "key", transport=httpx.MockTransport(handler))
    if inspect.iscoroutinefunction(fn):

        async def run() -> None:
            async with instance:
                await fn(instance, **args)

        asyncio.run(run())
    else:
        with instance:
            fn(instance, **args)
    return ClientCall(f"{cls.__name__}.{name}", cls.service, hints, requests)


@pytest.fixture(scope="module")
def calls() -> list[ClientCall]:
    """Every public method of every client, each called once."""
    return [
        _call(cls, name)
        for cls in _client_classes()
        for name, fn in vars(cls).items()
        if inspect.isfunction(fn) and not name.startswith("_") and name not in ("close", "aclose")
    ]


def _operation(doc: Doc, request: httpx.Request) -> tuple[str, Doc] | None:
    """The documented path template and operation a request goes to."""
    segments = request.url.path.split("/")
    for template, operations in doc["paths"].items():
        parts = template.split("/")
        if len(parts) == len(segments) and all(
            p == s or (p.startswith("{") and p.endswith("}") and s)
            for p, s in zip(parts, segments, strict=True)
        ):
            operation = operations.get(request.method.lower())
            if operation is not None:
                return template, operation
    return None


def _body_schema(doc: Doc, operation: Doc, content_type: str) -> Doc | None:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get(content_type, {}).get("schema")
    return None if schema is None else _resolve(doc, schema)


def _answer_schema(operation: Doc) -> Doc | None:
    """The JSON schema of the success answer (None: no JSON body, e.g. 204 or NDJSON)."""
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            return schema or None
    return None


# --------------------------------------------------------------------------- type comparison


def _resolve(doc: Doc, schema: Doc) -> Doc:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = doc["components"]["schemas"][name]
    return schema


def _split_null(doc: Doc, schema: Doc) -> tuple[bool, Doc]:
    schema = _resolve(doc, schema)
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        assert len(rest) == 1, f"cannot compare a union: {schema}"
        return True, _resolve(doc, rest[0])
    return False, schema


def _split_none(tp: Any) -> tuple[bool, Any]:
    if get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
        rest = [a for a in get_args(tp) if a is not type(None)]
        assert len(rest) == 1, f"cannot compare a union: {tp}"
        return True, rest[0]
    return False, tp


def _substitute(tp: Any, bound: dict[Any, Any]) -> Any:
    """``tp`` with the type variables of a generic TypedDict replaced (``list[T]`` -> ...)."""
    if tp in bound:
        return bound[tp]
    args = get_args(tp)
    if not args:
        return tp
    new = tuple(_substitute(a, bound) for a in args)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return Union[new]  # noqa: UP007 - built from a tuple
    if origin in (NotRequired, Required):
        return origin[new[0]]
    return origin[new]


JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclasses.dataclass
class Comparison:
    """Compares client types with one service's schemas, collecting every difference."""

    doc: Doc
    service: str
    problems: list[str] = dataclasses.field(default_factory=list)
    seen: set[type] = dataclasses.field(default_factory=set)
    free_form: set[str] = dataclasses.field(default_factory=set)

    def compare(self, tp: Any, schema: Doc, where: str, *, answer: bool) -> None:
        """``answer``: the service sends this body (every property it declares is present);
        otherwise the client sends it (the service's required properties must be)."""
        nullable, schema = _split_null(self.doc, schema)
        optional, tp = _split_none(tp)
        if nullable != optional:
            self.problems.append(
                f"{where}: {self.service} {'may send' if nullable else 'never sends'} null, the"
                f" client type {'does not allow' if nullable else 'allows'} None"
            )
        if tp is Any or not schema:
            return
        origin = get_origin(tp)
        if is_typeddict(origin or tp):
            self._typed_dict(tp, schema, where, answer=answer)
        elif origin is list:
            if schema.get("type") != "array":
                self.problems.append(f"{where}: {self.service} sends {schema}, not an array")
            else:
                # a fixed-length array (a tuple: ``prefixItems``) has no one item schema
                item = schema.get("items", {})
                self.compare(get_args(tp)[0], item, f"{where}[]", answer=answer)
        elif origin is dict:
            self._mapping(get_args(tp)[1], schema, where, answer=answer)
        elif origin is Literal:
            if set(schema.get("enum", ())) != set(get_args(tp)):
                self.problems.append(
                    f"{where}: the client allows {sorted(get_args(tp))}, {self.service}"
                    f" {sorted(schema['enum']) if 'enum' in schema else 'any ' + str(schema)}"
                )
        elif JSON_TYPES.get(tp) != schema.get("type"):
            self.problems.append(
                f"{where}: the client type is {tp.__name__}, {self.service} sends"
                f" {schema.get('type', schema)}"
            )

    def _typed_dict(self, tp: Any, schema: Doc, where: str, *, answer: bool) -> None:
        td = get_origin(tp) or tp
        bound = dict(zip(getattr(td, "__parameters__", ()), get_args(tp), strict=True))
        hints = {
            k: _substitute(v, bound) for k, v in get_type_hints(td, include_extras=True).items()
        }
        self.seen.add(td)
        name = td.__name__
        if "properties" not in schema:
            if schema.get("type") == "object" and schema.get("additionalProperties", True):
                self.free_form.add(where)
            else:
                self.problems.append(f"{where}: {self.service} sends {schema}, not an object")
            return
        properties, required = schema["properties"], set(schema.get("required", ()))
        for key in sorted(properties.keys() - hints.keys()):
            self.problems.append(
                f"{name}: {self.service} {'sends' if answer else 'accepts'} {key!r}, the client"
                " type lacks it"
            )
        for key in sorted(hints.keys() - properties.keys()):
            self.problems.append(f"{name}.{key}: not in {self.service}'s schema")
        for key in sorted(hints.keys() & properties.keys()):
            hint = hints[key]
            client_optional = get_origin(hint) is NotRequired or (
                not td.__total__ and get_origin(hint) is not Required
            )
            if get_origin(hint) in (NotRequired, Required):
                hint = get_args(hint)[0]
            if answer and client_optional:
                # pydantic writes every field, those with a default too
                self.problems.append(
                    f"{name}.{key}: {self.service} always sends it, the client type marks it"
                    " NotRequired"
                )
            if not answer and client_optional and key in required:
                self.problems.append(
                    f"{name}.{key}: {self.service} requires it, the client may omit"
                )
            self.compare(hint, properties[key], f"{name}.{key}", answer=answer)

    def _mapping(self, value_tp: Any, schema: Doc, where: str, *, answer: bool) -> None:
        values = schema.get("additionalProperties", True)
        if schema.get("type") != "object" or "properties" in schema:
            self.problems.append(f"{where}: {self.service} sends {schema}, not a mapping")
        elif values is True or values == {}:
            if value_tp is not Any:
                self.free_form.add(where)
        else:
            self.compare(value_tp, values, f"{where}{{}}", answer=answer)


def _is_wire_type(tp: Any) -> bool:
    return is_typeddict(get_origin(tp) or tp)


def _compare_call(call: ClientCall, doc: Doc, comparison: Comparison) -> None:
    """The method's return type against the answer it reads, a TypedDict parameter against the
    JSON body it sends."""
    (request,) = call.requests
    found = _operation(doc, request)
    assert found is not None, f"{call.name}: {request.method} {request.url.path} is undocumented"
    operation = found[1]
    returns = call.hints.get("return")
    schema = _answer_schema(operation)
    if schema is None:
        assert not _is_wire_type(returns), f"{call.name} reads JSON from an answer that has none"
    else:
        schema = _resolve(doc, schema)
        if not _is_wire_type(returns) and len(schema.get("properties", {})) == 1:
            # the method returns the answer's only field (e.g. ``items`` of the key list)
            (schema,) = schema["properties"].values()
        comparison.compare(returns, schema, f"{call.name} answer", answer=True)
    body = _body_schema(doc, operation, "application/json")
    for param, tp in call.hints.items():
        if param != "return" and _is_wire_type(tp):
            assert body is not None, f"{call.name}: {param} is sent, the service takes no JSON"
            comparison.compare(tp, body, f"{call.name} {param}", answer=False)


# --------------------------------------------------------------------------- tests


def test_every_client_method_was_exercised(calls: list[ClientCall]) -> None:
    names = {c.name for c in calls}
    assert {"IngestClient.get_asset", "CleanClient.set_policy", "AuditClient.export"} <= names
    assert "AsyncIngestClient.upload_assets" in names
    for call in calls:
        assert len(call.requests) == 1, f"{call.name} made {len(call.requests)} requests"


def test_every_request_the_client_makes_is_documented(
    calls: list[ClientCall], documents: dict[str, Doc]
) -> None:
    problems = []
    for call in calls:
        doc = documents[call.service]
        for request in call.requests:
            what = f"{call.name}: {request.method} {request.url.path}"
            found = _operation(doc, request)
            if found is None:
                problems.append(f"{what} is not in {call.service}'s OpenAPI document")
                continue
            template, operation = found
            query = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"}
            for name in sorted(set(request.url.params) - query):
                problems.append(f"{what}: query parameter {name!r} is not in {template}")
            content_type = request.headers.get("content-type", "").split(";")[0]
            if content_type == "application/json":
                sent = set(json.loads(request.content))
            elif content_type == "multipart/form-data":
                parts = re.findall(rb'form-data; name="([^"]+)"', request.content)
                sent = {part.decode() for part in parts}
            else:
                continue
            body = _body_schema(doc, operation, content_type)
            if body is None:
                problems.append(f"{what}: sends {content_type}, {template} takes none")
                continue
            for name in sorted(sent - body.get("properties", {}).keys()):
                problems.append(f"{what}: sends {name!r}, which {template} does not take")
            for name in sorted(set(body.get("required", ())) - sent):
                problems.append(f"{what}: does not send {name!r}, which {template} requires")
    assert not problems, "\n".join(sorted(set(problems)))


def test_client_types_match_the_services_schemas(
    calls: list[ClientCall], documents: dict[str, Doc]
) -> None:
    problems, seen, free_form = [], set(), set()
    for call in calls:
        comparison = Comparison(documents[call.service], call.service)
        _compare_call(call, documents[call.service], comparison)
        problems += comparison.problems
        seen |= comparison.seen
        free_form |= comparison.free_form
    assert not problems, "\n".join(sorted(set(problems)))
    wire_types = {v for v in vars(schemas).values() if is_typeddict(v)}
    assert wire_types - seen == set(), "wire types no client method reads or sends"
    assert free_form == FREE_FORM


def test_key_roles_are_the_services_roles(documents: dict[str, Doc]) -> None:
    roles = documents["ingest"]["components"]["schemas"]["Role"]["enum"]
    assert {r.value for r in keys.Role} == set(roles) == set(get_args(schemas.Role))


# --------------------------------------------------------------------------- event types


def _help_texts() -> Iterator[tuple[str, str]]:
    """(where, text) for the help of every command, group and option, the root's included."""

    def walk(cmd: Any, path: str) -> Iterator[tuple[str, str]]:
        for text in (cmd.help, cmd.epilog):
            if text:
                yield path, text
        for param in cmd.params:
            if getattr(param, "help", None):
                yield f"{path} {param.opts[0]}", param.help
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    yield from walk(typer.main.get_command(app), "conveyor")


AGGREGATES = sorted({name.split(".")[1] for name in EVENT_TYPES})
FULL_NAME = re.compile(r"\bconveyor(?:\.[a-z0-9_]+)+\.v[0-9]+\b")
TYPE_OPTION = re.compile(r"--type[= ]+(\S+)")
SHORT_NAME = re.compile(rf"(?<![\w./-])(?:{'|'.join(AGGREGATES)})\.[a-z_]+(?![\w.])")


def test_event_types_in_help_and_examples_are_in_the_catalogue() -> None:
    """The audit service filters on the full type (``conveyor.asset.ingested.v1``) by equality,
    so help must spell types as the catalogue does; a short form would match nothing."""
    problems, named = [], set()
    for where, text in _help_texts():
        for value in TYPE_OPTION.findall(text) + FULL_NAME.findall(text):
            named.add(value)
            if value not in EVENT_TYPES:
                problems.append(f"{where}: {value!r} is not in shared.events.EVENT_TYPES")
        for short in SHORT_NAME.findall(text):
            if mimetypes.guess_type(short)[0] is None:  # a file name such as video.mp4 is not
                problems.append(f"{where}: {short!r} is not a full event type (conveyor...v1)")
    assert not problems, "\n".join(sorted(set(problems)))
    assert named, "the help names no event type, so this test checks nothing"
