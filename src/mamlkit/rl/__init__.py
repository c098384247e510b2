"""Meta-reinforcement learning: MAML with a TRPO meta-update (Finn et al. 2017, section 5.3).

Batched task environments (2D navigation in torch; HalfCheetah velocity and direction on
MuJoCo, with the ``rl`` extra), trajectory sampling for all tasks at once, the linear
feature baseline, GAE, the policy-gradient inner loop on ``mamlkit.core``, TRPO, and the
training loop, test protocol and figures behind ``mamlkit train|eval`` for RL configs.
"""

from mamlkit.rl.config import RLConfig, is_rl_config, load_rl_config
from mamlkit.rl.env import EnvError, TaskEnv
from mamlkit.rl.episodes import Episodes, sample_episodes
from mamlkit.rl.maml_trpo import MAMLTRPO, MAMLTRPOSettings, MetaBatch
from mamlkit.rl.navigation import Navigation2D
from mamlkit.rl.trpo import Linearization, TRPOResult, TRPOSettings, TRPOSettingsError, trpo_step

__all__ = ["EnvError", "Episodes", "Linearization", "MAMLTRPO", "MAMLTRPOSettings", "MetaBatch", "Navigation2D",
           "RLConfig", "TRPOResult", "TRPOSettings", "TRPOSettingsError", "TaskEnv",
           "is_rl_config", "load_rl_config", "sample_episodes", "trpo_step"]
