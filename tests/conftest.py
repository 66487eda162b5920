"""Test-wide settings: no network, deterministic seeds, two threads (the CI machine has two cores)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

torch.set_num_threads(2)

# Hypothesis profiles (the fuzz suite, tests/fuzz): "ci" is the default, small and reproducible (derandomized, no
# example database) so the whole suite stays within about a minute on two cores; "deep" searches much further.
# Pick one with HYPOTHESIS_PROFILE=deep or `pytest --hypothesis-profile=deep`.
_HYPOTHESIS_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile(
    "ci",
    max_examples=4,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure reports the first failing example
    **_HYPOTHESIS_COMMON,
)
settings.register_profile("deep", max_examples=300, **_HYPOTHESIS_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default=os.environ.get("HF_MARGIN_TEST_DEVICE", "cpu"),
        help="device for the device-parametrised tests: cpu (default) or cuda (skipped without a GPU); "
        "also HF_MARGIN_TEST_DEVICE",
    )


@pytest.fixture
def device(request: pytest.FixtureRequest) -> str:
    """The device the core tests run on (`--device` / HF_MARGIN_TEST_DEVICE); cuda skips cleanly without a GPU."""
    name = str(request.config.getoption("--device"))
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"--device {name} asked for, but torch.cuda.is_available() is False on this machine")
    if not name.startswith(("cpu", "cuda")):
        raise pytest.UsageError(f"--device must be cpu or cuda[:index], got {name!r}")
    return name


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
