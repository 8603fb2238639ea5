"""cluster.yaml and cluster-two-machines.yaml must stay valid for `ray up` (the launcher's own
preparation and schema), with what the multi-node run taught (issue 13)."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).parents[1]


def _config(name: str) -> dict[str, Any]:
    config: dict[str, Any] = prepare_config(yaml.safe_load((ROOT / name).read_text()))
    validate_config(config)
    return config


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-two-machines.yaml"])
def test_cluster_config_is_valid_for_ray_up(name: str) -> None:
    config = _config(name)
    assert config["provider"]["type"] == "local"
    head = " ".join(config["head_start_ray_commands"])
    workers = " ".join(config["worker_start_ray_commands"])
    assert "--port=6380" in head and "--address=$RAY_HEAD_IP:6380" in workers  # Redis keeps 6379
    assert "RAY_health_check_period_ms" in head  # a lost node is noticed in seconds
    assert "RAY_worker_niceness=0" in head and "RAY_worker_niceness=0" in workers


def test_the_two_machine_config_starts_the_first_frontend_once_both_nodes_are_up() -> None:
    config = _config("cluster-two-machines.yaml")
    assert len(config["provider"]["worker_ips"]) == 1
    assert config["available_node_types"]["local.cluster.node"]["min_workers"] == 1
    setup = " ".join(config["setup_commands"])
    assert "--database-url postgresql://" in setup and "--redis-url redis://" in setup
    # The frontend comes after `ray start` on the worker, never in the head's commands: the
    # first frontend spreads the shards over the nodes alive then.
    workers = config["worker_start_ray_commands"]
    assert workers.index(next(c for c in workers if "serve.sh" in c)) > 1
    assert not any("serve" in c for c in config["head_start_ray_commands"])
