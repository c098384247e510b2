"""The batched 2D-navigation environment against a plain one-robot implementation."""

from __future__ import annotations

import math

import pytest
import torch

from mamlkit.rl import EnvError, Navigation2D

pytestmark = pytest.mark.rl


class OneRobot:
    """The paper's 2D navigation for one robot, in plain Python floats."""

    def __init__(self, goal, scale):
        self.goal, self.position, self.scale = goal, [0.0, 0.0], scale

    def step(self, action):
        self.position = [p + min(max(self.scale * a, -0.1), 0.1) for p, a in zip(self.position, action)]
        distance = math.dist(self.position, self.goal)
        return list(self.position), -distance, distance < 0.01


@pytest.mark.parametrize("scale", [1.0, 0.1], ids=["raw", "paper_code"])
def test_batched_steps_equal_one_robot_at_a_time(generator, scale):
    env = Navigation2D(action_scale=scale)
    goals = env.sample_tasks(64, generator).double()
    goals[0] = torch.tensor([0.05, 0.05])  # reached within a step of the origin: done fires
    obs = env.reset(goals, generator)
    robots = [OneRobot(goal.tolist(), scale) for goal in goals]
    assert torch.equal(obs, torch.zeros(64, 2, dtype=torch.float64))
    done_seen = False
    for _ in range(30):
        actions = torch.randn(64, 2, generator=generator, dtype=torch.float64) * 0.15 / scale
        actions[0] = (goals[0] - obs[0]) / scale  # step straight onto the goal
        obs, reward, done = env.step(actions)
        for i, robot in enumerate(robots):
            want_obs, want_reward, want_done = robot.step(actions[i].tolist())
            assert obs[i].tolist() == pytest.approx(want_obs, abs=1e-12)
            assert reward[i].item() == pytest.approx(want_reward, abs=1e-12)
            assert bool(done[i]) == want_done
        done_seen |= bool(done[0])
    assert done_seen


def test_goals_are_uniform_in_the_square(generator):
    goals = Navigation2D().sample_tasks(4000, generator)
    assert goals.abs().max() <= 0.5 and goals.min() < -0.45 and goals.max() > 0.45
    assert goals.mean(0).abs().max() < 0.02


def test_bad_shapes_and_settings_are_named():
    env = Navigation2D()
    with pytest.raises(EnvError, match=r"goals of shape \(n_envs, 2\)"):
        env.reset(torch.zeros(3), torch.Generator())
    env.reset(torch.zeros(3, 2), torch.Generator())
    with pytest.raises(EnvError, match=r"actions must have shape \(3, 2\)"):
        env.step(torch.zeros(2, 2))
    with pytest.raises(EnvError, match="horizon must be >= 1"):
        Navigation2D(horizon=0)
