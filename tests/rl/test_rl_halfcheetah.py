"""HalfCheetah goal velocity and direction: dynamics and rewards against gymnasium's HalfCheetah-v5."""

from __future__ import annotations

import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv  # noqa: E402

from mamlkit.rl.halfcheetah import HalfCheetahDir, HalfCheetahVel  # noqa: E402

pytestmark = pytest.mark.rl


@pytest.fixture(scope="module")
def reference():
    env = HalfCheetahEnv()
    yield env
    env.close()


@pytest.mark.parametrize("make", [HalfCheetahVel, HalfCheetahDir], ids=["velocity", "direction"])
def test_steps_and_rewards_follow_half_cheetah_v5(make, reference, generator):
    env = make(horizon=200)
    tasks = env.sample_tasks(3, generator)
    obs = env.reset(tasks, generator)
    assert obs.shape == (3, 17)
    qpos = [np.concatenate([[0.0], o[:8].double().numpy()]) for o in obs]  # x does not enter the dynamics
    qvel = [o[8:].double().numpy() for o in obs]
    for step in range(4):
        actions = torch.randn(3, 6, generator=generator, dtype=torch.float64) * 0.8  # some beyond [-1, 1]
        obs, reward, done = env.step(actions)
        assert not done.any()
        for i in range(3):
            reference.set_state(qpos[i], qvel[i])
            want_obs, _, _, _, info = reference.step(actions[i].numpy().clip(-1, 1))
            qpos[i], qvel[i] = reference.data.qpos.copy(), reference.data.qvel.copy()
            np.testing.assert_allclose(obs[i].double().numpy(), want_obs, rtol=1e-4, atol=1e-4)
            a = actions[i].clamp(-1, 1)
            v, goal = info["x_velocity"], tasks[i, 0].item()
            forward = -abs(v - goal) if make is HalfCheetahVel else goal * v
            assert reward[i].item() == pytest.approx(forward - 0.05 * a.square().sum().item(), abs=1e-5)


def test_task_distributions(generator):
    velocities = HalfCheetahVel().sample_tasks(500, generator)
    assert velocities.shape == (500, 1) and 0 <= velocities.min() and velocities.max() <= 2
    assert velocities.max() > 1.9 and velocities.min() < 0.1
    directions = HalfCheetahDir().sample_tasks(500, generator)
    assert set(directions.unique().tolist()) == {-1.0, 1.0}
    assert abs(directions.mean().item()) < 0.15


def test_resets_are_seeded_and_noisy():
    env = HalfCheetahVel()
    tasks = torch.ones(4, 1)
    first = env.reset(tasks, torch.Generator().manual_seed(7))
    again = env.reset(tasks, torch.Generator().manual_seed(7))
    torch.testing.assert_close(first, again)
    assert 0 < first[:, :8].abs().max() <= 0.1 + 1e-6 and first[0].ne(first[1]).any()
