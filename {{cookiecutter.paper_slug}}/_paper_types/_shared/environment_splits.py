# Training episodes draw their environment seeds from [0, TRAIN_SEED_RANGE);
# evaluation seeds lie above it, so no evaluation start state is ever trained on.
TRAIN_SEED_RANGE = 1_000_000


def spec(cfg) -> dict[str, int]:
    env = gym.make(cfg.env_id)
    sizes = {"obs_dim": env.observation_space.shape[0], "num_actions": env.action_space.n}
    env.close()
    return sizes


def build_splits(cfg) -> dict[str, dict[str, torch.Tensor]]:
    """Environment seeds of the evaluation episodes. Training draws fresh seeds
    as it plays; its split holds one seed from the training range only so that
    ``eval.py split=train`` can play a training-distribution episode."""
    val_start = TRAIN_SEED_RANGE + cfg.seed
    test_start = val_start + cfg.val_episodes
    return {
        "train": {"seed": torch.tensor([cfg.seed])},
        "val": {"seed": torch.arange(val_start, test_start)},
        "test": {"seed": torch.arange(test_start, test_start + cfg.test_episodes)},
    }
