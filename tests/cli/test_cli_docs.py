"""docs/cli.md, run as a reader would: every `sh` block, in order, in an empty folder.

Kafka is the test broker; nothing else is set up first, so a block that relies on something no
earlier block created fails here (blocks marked `text` are the commands that run until stopped).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.propagation.conftest import Broker
from tests.propagation.conftest import broker as broker  # the session's test broker

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.kafka
def test_every_example_of_cli_md_runs_in_order(tmp_path: Path, broker: Broker) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
    blocks = sh_blocks()
    assert len(blocks) >= 8
    for block in blocks:
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"{block}\n-> {result.returncode}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
