"""The library-reuse example (experiments/examples/dqn_seer.py) runs across its freeze."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_example():
    spec = importlib.util.spec_from_file_location(
        "dqn_seer", os.path.join(ROOT, "experiments", "examples", "dqn_seer.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_is_short():
    with open(os.path.join(ROOT, "experiments", "examples", "dqn_seer.py")) as f:
        assert len(f.read().splitlines()) < 150


def test_dqn_with_seer_crosses_the_freeze_on_a_real_game():
    args = ["--game", "pong", "--steps", "700", "--freeze-step", "350", "--learning-starts", "100"]
    result = load_example().main([*args, "--budget-mb", "2", "--target-every", "100"])
    images, latents = result["capacity"]["images"], result["capacity"]["latents"]
    # One 84x84 frame (7,056 B) per image slot vs one 576-float latent (2,304 B):
    # ~3x the slots from the same 2 MB (here capped at the run's 701 observations).
    assert images == 2 * 2**20 // (84 * 84 + 13)
    assert latents == min(2 * 2**20 // (576 * 4 + 13), 701)
    assert latents > 2 * images
    # every observation stored once, the oldest images dropped at the freeze only if over capacity
    assert result["stored"] == min(images, 351) + 350
    assert result["encoder_unchanged_after_freeze"] is True
