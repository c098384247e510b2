"""HalfCheetah goal velocity and goal direction (Finn et al. 2017, section 5.3), on gymnasium's
MuJoCo HalfCheetah-v5 model.

Many copies of the simulation share one compiled ``mujoco.MjModel`` (HalfCheetah-v5's, with
its frame skip of 5, so one step is 0.05 s); their states are rows of one array, advanced
together by one ``mujoco.rollout`` call per step (faster than a Python loop over
``MjData``, see docs/rl.md). Observations are HalfCheetah-v5's: joint positions without the x position, and joint
velocities (17 numbers). Resets add HalfCheetah-v5's noise: U(−0.1, 0.1) to positions,
0.1·N(0, 1) to velocities. Actions are clipped to the actuators' range [−1, 1]. The
forward velocity v is the x displacement of the root over the step divided by its
duration, as HalfCheetah-v5 computes it.

Rewards, with a the clipped action:
    goal velocity (task: v_goal ~ U[0, 2]):   −|v − v_goal| − 0.05 ‖a‖²
    goal direction (task: d = ±1, p = 1/2):    d · v − 0.05 ‖a‖²

Needs the ``rl`` extra (gymnasium, mujoco).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mamlkit.rl.env import EnvError, check_horizon

CTRL_COST = 0.05
RESET_NOISE = 0.1


class HalfCheetahTasks:
    """Batched HalfCheetah copies; a task is one number (a target velocity or a direction).

    Subclasses set ``forward_reward(velocity, tasks)`` and ``sample_tasks``.
    """

    obs_dim = 17
    act_dim = 6
    task_dim = 1

    def __init__(self, *, horizon: int = 200) -> None:
        check_horizon(horizon)
        mujoco = _mujoco()
        from mujoco import rollout

        self.horizon = horizon
        self._model, self._frame_skip = _half_cheetah_model()
        self.dt = self._model.opt.timestep * self._frame_skip
        nq, nv = self._model.nq, self._model.nv
        if mujoco.mj_stateSize(self._model, mujoco.mjtState.mjSTATE_FULLPHYSICS) != 1 + nq + nv:
            raise EnvError("this HalfCheetah model's physics state is not (time, qpos, qvel)")
        self._qpos = slice(1, 1 + nq)  # columns of a full-physics state row
        self._qvel = slice(1 + nq, 1 + nq + nv)
        self._init_qpos = self._model.qpos0.copy()
        self._rollout = rollout.Rollout(nthread=0)
        self._scratch = [mujoco.MjData(self._model)]
        self._state = np.zeros((0, 1 + nq + nv))
        self._tasks = torch.zeros(0, 1)

    def reset(self, tasks: Tensor, generator: torch.Generator) -> Tensor:
        if tasks.dim() != 2 or tasks.shape[1] != 1:
            raise EnvError(f"HalfCheetah tasks have shape (n_envs, 1); got {tuple(tasks.shape)}")
        n, nq, nv = tasks.shape[0], self._model.nq, self._model.nv
        noise = torch.rand(n, nq, generator=generator, dtype=torch.float64) * 2 - 1
        self._state = np.zeros((n, 1 + nq + nv))
        self._state[:, self._qpos] = self._init_qpos + RESET_NOISE * noise.numpy()
        self._state[:, self._qvel] = RESET_NOISE * torch.randn(n, nv, generator=generator, dtype=torch.float64).numpy()
        self._tasks = tasks.clone()
        return self._observations()

    def step(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n = self._tasks.shape[0]
        if actions.shape != (n, self.act_dim):
            raise EnvError(f"HalfCheetah actions must have shape {(n, self.act_dim)}; got {tuple(actions.shape)}")
        clipped = actions.detach().to(torch.float64).clamp(-1.0, 1.0)
        controls = np.repeat(clipped.numpy()[:, None, :], self._frame_skip, axis=1)  # (n, frame_skip, 6)
        states, _ = self._rollout.rollout(self._model, self._scratch, self._state, controls,
                                          nstep=self._frame_skip)
        x_before = self._state[:, self._qpos.start]
        self._state = states[:, -1]
        velocity = torch.from_numpy((self._state[:, self._qpos.start] - x_before) / self.dt).to(actions.dtype)
        reward = self.forward_reward(velocity, self._tasks[:, 0].to(actions.dtype)) \
            - CTRL_COST * clipped.to(actions.dtype).square().sum(-1)
        return self._observations().to(actions.dtype), reward, torch.zeros(n, dtype=torch.bool)

    def forward_reward(self, velocity: Tensor, tasks: Tensor) -> Tensor:
        """The task's reward for forward velocity ``velocity`` (n,), in m/s."""
        raise NotImplementedError

    def _observations(self) -> Tensor:
        """HalfCheetah-v5's observations, qpos without the x position and qvel, (n, 17)."""
        return torch.from_numpy(self._state[:, self._qpos.start + 1:self._qvel.stop].copy()).to(torch.float32)


class HalfCheetahVel(HalfCheetahTasks):
    """Goal velocity: run forward at v_goal ~ U[0, ``max_velocity``] m/s (the paper: 2)."""

    def __init__(self, *, horizon: int = 200, max_velocity: float = 2.0) -> None:
        if not max_velocity > 0:
            raise EnvError(f"HalfCheetah max_velocity must be > 0; got {max_velocity}")
        super().__init__(horizon=horizon)
        self.max_velocity = max_velocity

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.rand(n, 1, generator=generator) * self.max_velocity

    def forward_reward(self, velocity: Tensor, tasks: Tensor) -> Tensor:
        return -(velocity - tasks).abs()


class HalfCheetahDir(HalfCheetahTasks):
    """Goal direction: run forward (d = +1) or backward (d = −1), each with probability 1/2."""

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.randint(0, 2, (n, 1), generator=generator).float() * 2 - 1

    def forward_reward(self, velocity: Tensor, tasks: Tensor) -> Tensor:
        return tasks * velocity


def _mujoco():
    try:
        import mujoco
    except ImportError:
        raise EnvError("HalfCheetah needs the rl extra: pip install 'mamlkit[rl]'") from None
    return mujoco


def _half_cheetah_model():
    """HalfCheetah-v5's compiled model and frame skip, from gymnasium's environment."""
    _mujoco()
    try:
        from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
    except ImportError:
        raise EnvError("HalfCheetah needs the rl extra: pip install 'mamlkit[rl]'") from None
    env = HalfCheetahEnv()
    model, frame_skip = env.model, env.frame_skip
    env.close()
    return model, frame_skip
