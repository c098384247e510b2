"""The core's performance kernels behind one policy: task-batched layers (``stacked``),
BatchNorm in its modes (``batch_norm``), and the thresholds that choose among them (``policy``).
Every kernel gives the same numbers as running the module task by task; they differ in speed."""
