import torch

# The tests use tiny tensors: one thread avoids OpenMP start-up and spin-wait costs, which
# dominate them and make the suite several times slower on a busy two-core machine.
torch.set_num_threads(1)
