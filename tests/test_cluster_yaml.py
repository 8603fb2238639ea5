"""cluster.yaml must stay valid for `ray up` (the launcher's own preparation and schema)."""

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config


def test_cluster_yaml_is_valid_for_ray_up() -> None:
    config = prepare_config(yaml.safe_load((Path(__file__).parents[1] / "cluster.yaml").read_text()))
    validate_config(config)
    assert config["provider"]["type"] == "local"
    assert any("--port=6380" in c for c in config["head_start_ray_commands"])  # Redis keeps 6379
