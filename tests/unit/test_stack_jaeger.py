"""deploy/stack/jaeger.py: the trace viewer's generated config and its build record."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from deploy.stack.config import Ports, load_settings
from deploy.stack.jaeger import MODULE, Jaeger, render_config
from shared import endpoints


def listeners(config: dict[str, object]) -> list[str]:
    """Every `endpoint:` value anywhere in the config."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "endpoint":
                    found.append(str(value))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    return found


def test_config_binds_every_listener_to_loopback_on_the_endpoints_ports() -> None:
    config = yaml.safe_load(render_config(Ports(), ui_assets=None))
    assert sorted(listeners(config)) == sorted(
        f"{endpoints.HOST}:{port}"
        for port in (
            endpoints.JAEGER_UI_PORT,
            endpoints.JAEGER_QUERY_GRPC_PORT,
            endpoints.JAEGER_OTLP_GRPC_PORT,
            endpoints.JAEGER_OTLP_HTTP_PORT,
        )
    )
    assert config["service"]["telemetry"]["metrics"] == {"level": "none"}  # no port 8888
    assert config["service"]["extensions"] == ["jaeger_storage", "jaeger_query"]


def test_config_receives_otlp_into_memory_storage_that_the_query_reads() -> None:
    config = yaml.safe_load(render_config(Ports(), max_traces=123, ui_assets=None))
    assert config["service"]["pipelines"]["traces"] == {
        "receivers": ["otlp"],
        "processors": ["batch"],
        "exporters": ["jaeger_storage_exporter"],
    }
    backends = config["extensions"]["jaeger_storage"]["backends"]
    assert backends == {"memstore": {"memory": {"max_traces": 123}}}
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] == "memstore"
    assert config["extensions"]["jaeger_query"]["storage"] == {"traces": "memstore"}
    assert "ui" not in config["extensions"]["jaeger_query"]


def test_config_serves_the_ui_from_a_folder_when_given_and_follows_shifted_ports() -> None:
    ports = Ports().shifted(100)
    config = yaml.safe_load(render_config(ports, ui_assets=Path("/x/jaeger ui: 'q'")))
    query = config["extensions"]["jaeger_query"]
    assert query["ui"] == {"assets_path": "/x/jaeger ui: 'q'"}
    assert query["http"]["endpoint"] == f"{endpoints.HOST}:{endpoints.JAEGER_UI_PORT + 100}"
    otlp = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert otlp == f"{endpoints.HOST}:{endpoints.JAEGER_OTLP_HTTP_PORT + 100}"


def test_a_build_counts_only_with_the_binary_and_a_record_of_the_pinned_version(
    tmp_path: Path,
) -> None:
    settings = dataclasses.replace(load_settings({}), state=tmp_path)
    jaeger = Jaeger(settings)
    assert not jaeger.built()
    jaeger.binary.parent.mkdir(parents=True)
    jaeger.binary.write_bytes(b"\x7fELF")
    assert not jaeger.built()  # an interrupted build writes no record
    jaeger.marker.write_text(f"{MODULE}@v0.0.1\n")
    assert not jaeger.built()  # another version: build again
    jaeger.marker.write_text(f"{MODULE}@v{settings.jaeger_version}\n")
    assert jaeger.built()
    assert jaeger.state() == ("stopped", None, f"stopped, `make run` starts it at {jaeger.url}")


def test_the_vendored_ui_of_the_pinned_version_unpacks_once_with_the_query_service_hooks(
    tmp_path: Path,
) -> None:
    jaeger = Jaeger(dataclasses.replace(load_settings({}), state=tmp_path))
    folder = jaeger.unpack_ui()
    assert folder == tmp_path / "jaeger" / "ui"
    index = (folder / "index.html").read_text()
    # Jaeger's query service finds these lines to inject its UI config and version.
    assert "// JAEGER_CONFIG_JS" in index
    assert "const JAEGER_VERSION = DEFAULT_VERSION;" in index
    scripts = [path.name for path in (folder / "static").glob("index-*.js")]
    assert scripts and all(name in index for name in scripts)
    (folder / "index.html").write_text("changed")
    assert jaeger.unpack_ui() == folder
    assert (folder / "index.html").read_text() == "changed"  # unpacked once, not every start
