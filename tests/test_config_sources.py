"""One source of truth per config key: config/config.yaml, the schema and the typed settings agree.

Where each key's default lives:
- library settings (``prepare`` -> ``pipeline.prepare_config``; ``evaluate.samples`` ->
  ``benchmark.evaluate.Settings``; ``evaluate.bootstrap`` -> ``benchmark.aggregate.DEFAULT_BOOT``;
  ``evaluate.resolution`` -> ``dgs_core.infer.RESOLUTION``; protocol names and inline protocol keys
  -> ``benchmark.protocols`` (NAMES, Protocol); datasets and splits -> ``pipeline.datasets``;
  generator presets and seed -> ``pipeline.synthetic.config``; ``train.device`` -> ``dgs_core.train``):
  the typed code is the source, and the schema must state the same default and the same choices;
- workflow-only keys (experiments, figures, seeds, ...): the schema is the source.
config/config.yaml restates every default of the schema, key for key. Each test fails naming the key.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _props(*path: str) -> dict:
    node = SCHEMA
    for key in path:
        node = node["properties"][key]
    return node


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def test_config_file_states_every_schema_key_with_its_default() -> None:
    def check(values: dict, schema: dict, where: str) -> None:
        props = schema["properties"]
        assert set(values) == set(props), f"{where or 'top level'}: config.yaml keys {sorted(values)} != schema keys {sorted(props)}"
        for key, value in values.items():
            spec = props[key]
            if spec.get("type") == "object" and "properties" in spec and spec["properties"]:
                check(value, spec, f"{where}{key}.")
            else:
                assert value == spec["default"], f"{where}{key}: config {value!r} != schema default {spec['default']!r}"

    check(CONFIG, SCHEMA, "")


def test_every_section_refuses_unknown_keys() -> None:
    assert SCHEMA["additionalProperties"] is False
    for key, spec in SCHEMA["properties"].items():
        if spec.get("type") == "object" and spec.get("properties"):
            assert spec.get("additionalProperties") is False, f"section {key} accepts unknown keys"


def test_prepare_section_is_exactly_the_prepare_settings() -> None:
    from pipeline.prepare_config import RUNTIME_FIELDS, JobOptions, PrepareConfig

    fields = {f.name: f.default for cls in (PrepareConfig, JobOptions) for f in dataclasses.fields(cls)
              if f.name not in RUNTIME_FIELDS}
    props = _props("prepare")["properties"]
    assert set(props) == set(fields), f"schema-only {sorted(set(props) - set(fields))}, settings-only {sorted(set(fields) - set(props))}"
    for key, spec in props.items():
        assert spec["default"] == _plain(fields[key]), f"prepare.{key}: schema {spec['default']!r} != settings {fields[key]!r}"
        if "enum" in spec:
            bad = PrepareConfig.__dataclass_fields__.get(key)
            assert bad is None or fields[key] in spec["enum"], key


def test_prepare_section_refuses_unknown_and_runtime_keys() -> None:
    from pipeline.prepare_config import PrepareConfigError, load_prepare_section

    with pytest.raises(PrepareConfigError, match=r"my\.yaml.*'surfce_offset'"):
        load_prepare_section({"surfce_offset": 0.1}, "my.yaml")
    with pytest.raises(PrepareConfigError, match="raycast_threads"):
        load_prepare_section({"raycast_threads": 4}, "my.yaml")
    with pytest.raises(PrepareConfigError, match="exclusion"):
        load_prepare_section({"exclusion": "nearest"}, "my.yaml")


def test_evaluate_section_matches_the_scoring_code() -> None:
    from benchmark.aggregate import DEFAULT_BOOT
    from benchmark.evaluate import SAVE_MESHES, Settings
    from benchmark.protocols import GT_SCOPES, MISSING, NAMES, ORDERS, POINTS, Protocol, resolve
    from dgs_core.infer import DEFAULT_GRID, GRIDS, RESOLUTION
    from pipeline.datasets import DATASETS
    from pipeline.geometry.isosurface import DEPTH_SOURCES

    settings = {f.name: f.default for f in dataclasses.fields(Settings)}
    props = _props("evaluate")["properties"]
    assert props["samples"]["default"] == settings["n_samples"]
    assert props["bootstrap"]["default"] == DEFAULT_BOOT
    assert props["resolution"]["default"] == RESOLUTION
    assert props["grid"]["enum"] == list(GRIDS) and props["grid"]["default"] == DEFAULT_GRID
    assert props["save_meshes"]["enum"] == list(SAVE_MESHES) and props["save_meshes"]["default"] == settings["save_meshes"]
    assert props["depth_source"]["enum"] == list(DEPTH_SOURCES) and props["depth_source"]["default"] == settings["depth_source"]
    name_item, inline_item = props["protocols"]["items"]["oneOf"]
    assert name_item["enum"] == list(NAMES)
    assert inline_item["properties"]["base"]["enum"] == list(NAMES)
    fields = {f.name for f in dataclasses.fields(Protocol)}
    assert set(inline_item["properties"]) == fields | {"base"}, "inline protocol keys != Protocol fields"
    choices = {"order": ORDERS, "gt_scope": GT_SCOPES, "points": POINTS, "missing": MISSING}
    assert {k: tuple(v["enum"]) for k, v in inline_item["properties"].items() if "enum" in v and k != "base"} == choices
    for name in props["protocols"]["default"]:
        resolve(name)
    assert props["datasets"]["items"]["enum"] == list(DATASETS)
    assert props["datasets"]["default"] == list(DATASETS)


def test_dataset_enums_come_from_the_registry() -> None:
    from benchmark.protocols import NAMES
    from pipeline.datasets import DATASETS

    assert _props("ablation")["properties"]["datasets"]["items"]["enum"] == list(DATASETS)
    assert _props("ablation")["properties"]["protocol"]["enum"] == list(NAMES)
    assert _props("scannet_splits")["items"]["enum"] == list(DATASETS["scannet"].splits)
    for name in DATASETS:  # every registered dataset has a root key
        assert f"{name}_root" in SCHEMA["properties"], name


def test_synthetic_section_matches_the_generator() -> None:
    from pipeline.synthetic.config import PRESETS, GeneratorConfig

    props = _props("synthetic")["properties"]
    assert sorted(props["preset"]["enum"]) == sorted(PRESETS)
    assert props["preset"]["default"] in PRESETS
    assert props["seed"]["default"] == GeneratorConfig().seed


def test_train_section_matches_the_trainer_and_the_experiment_files() -> None:
    from dgs_core.train import DEVICES

    props = _props("train")["properties"]
    assert props["device"]["enum"] == list(DEVICES)
    experiments = {p.stem for p in (REPO / "config" / "experiments").glob("*.yaml")}
    assert props["experiment"]["default"] in experiments
    assert set(props["ablation"]["default"]) <= experiments


def test_inline_protocols_validate_against_the_schema() -> None:
    import jsonschema

    from benchmark.protocols import resolve

    inline = {"name": "paper-10cm", "base": "dgs-paper", "threshold": 0.1, "missing": "drop"}
    jsonschema.validate({"evaluate": {"protocols": ["dgs-release", "paper", inline]}}, SCHEMA)
    assert resolve(inline).threshold == 0.1  # what the schema accepts, the registry resolves
    for bad in (["releese"], [{"name": "x", "treshold": 0.1}], [{"threshold": 0.1}], [{"name": "x", "order": "later"}]):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"evaluate": {"protocols": bad}}, SCHEMA)


def test_predict_image_defaults_come_from_the_workflow_and_prepare_settings() -> None:
    from dgs.predict_image import DEFAULT_CHECKPOINT, VirtualCamera
    from pipeline.prepare_config import PrepareConfig

    experiment = _props("train")["properties"]["experiment"]["default"]
    assert DEFAULT_CHECKPOINT == Path(_props("work_root")["default"]) / "models" / experiment / "final.pt"
    cfg = PrepareConfig()
    assert (VirtualCamera().width, VirtualCamera().height, VirtualCamera().focal) == (cfg.width, cfg.height, cfg.focal)
def test_objects_section_matches_the_object_code() -> None:
    from benchmark.objects import SAMPLES
    from dgs_core.infer_objects import RESOLUTION
    from pipeline.prepare_objects import ObjectPrepareConfig
    from pipeline.synthetic.objects import PRESETS as OBJECT_PRESETS
    from pipeline.synthetic.config import PRESETS

    props = _props("objects")["properties"]
    fields = {f.name: f.default for f in dataclasses.fields(ObjectPrepareConfig)}
    prepare = props["prepare"]["properties"]
    assert set(prepare) == set(fields)
    for key, spec in prepare.items():
        assert spec["default"] == fields[key], f"objects.prepare.{key}: schema {spec['default']!r} != {fields[key]!r}"
    assert props["resolution"]["default"] == RESOLUTION and props["samples"]["default"] == SAMPLES
    experiments = {p.stem for p in (REPO / "config" / "experiments").glob("*.yaml")}
    assert set(props["experiments"]["default"]) <= experiments
    assert set(OBJECT_PRESETS) == set(PRESETS)  # synthetic.preset names both generators' presets
