"""ms per meta-iteration of mamlkit MAML on Conv4-64 strided, 5-way 1-shot, meta-batch 32.

    python benchmarks/conv4_iteration.py THREADS QUERY_PER_CLASS VECTORIZE CHUNK [STEPS] [fo]

e.g. ``2 1 stacked none`` (the omniglot_5w1s preset's shape: 1 query image per class) or
``2 15 stacked none`` (issue 7's W2: 15 per class). Synthetic 28×28 images; an iteration is
``zero_grad``, ``meta_backward``, Adam step; prints the median of 5 after one warm-up, and
the process's peak RSS.
"""

import resource
import sys
import time

import torch

from mamlkit import MAML, TaskBatch
from mamlkit.models import conv4

torch.manual_seed(0)
threads, n_query, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
chunk = None if sys.argv[4] == "none" else int(sys.argv[4])
steps = int(sys.argv[5]) if len(sys.argv) > 5 else 1
first_order = len(sys.argv) > 6 and sys.argv[6] == "fo"
torch.set_num_threads(threads)
n_tasks, n_way, k_shot = 32, 5, 1
labels = torch.arange(n_way)
batch = TaskBatch(torch.rand(n_tasks, n_way * k_shot, 1, 28, 28), labels.repeat_interleave(k_shot).repeat(n_tasks, 1),
                  torch.rand(n_tasks, n_way * n_query, 1, 28, 28), labels.repeat_interleave(n_query).repeat(n_tasks, 1))
model = conv4(1, n_way, image_size=28)
learner = MAML(model, inner_lr=0.4, inner_steps=steps, loss="cross_entropy", vectorize=mode, chunk_size=chunk,
               first_order=first_order)
optimizer = torch.optim.Adam(model.parameters(), 1e-3)
times = []
for _ in range(6):
    start = time.perf_counter()
    optimizer.zero_grad()
    learner.meta_backward(batch)
    optimizer.step()
    times.append(time.perf_counter() - start)
times = sorted(times[1:])
print(sys.argv[1:], f"median {times[len(times) // 2] * 1000:.0f} ms  "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
