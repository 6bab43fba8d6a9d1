"""A Python torch.distributed rank (gloo, env://) for TestPythonRanks.

It issues the collectives of group_test.go's pythonScenario in the same
order and sizes, and checks the results: tensor i of rank r holds
(r+1)(i+1) + k%5 at element k.
"""
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist


def filled(rank, i, n):
    return torch.tensor([float((rank + 1) * (i + 1) + k % 5) for k in range(n)])


def main():
    dist.init_process_group("gloo", init_method="env://", timeout=timedelta(seconds=30))
    rank, ws = dist.get_rank(), dist.get_world_size()
    tri = ws * (ws + 1) // 2
    # Go's AllReduceSum of [1000, 10] floats: one flat bucket.
    flat = torch.cat([filled(rank, 0, 1000), filled(rank, 1, 10)])
    dist.all_reduce(flat)
    want = torch.cat([torch.tensor([float(1 * tri + ws * (k % 5)) for k in range(1000)]),
                      torch.tensor([float(2 * tri + ws * (k % 5)) for k in range(10)])])
    assert torch.equal(flat, want), f"allreduce: {flat[:8]} want {want[:8]}"
    c = filled(rank, 0, 20)
    dist.broadcast(c, 0)
    assert torch.equal(c, filled(0, 0, 20)), f"broadcast: {c}"
    v = torch.tensor([float(rank + 1), 0.25], dtype=torch.float64)
    dist.all_reduce(v)
    assert v.tolist() == [float(tri), 0.25 * ws], f"float64 allreduce: {v}"
    dist.barrier()
    dist.barrier()  # Go's Close
    dist.destroy_process_group()
    print(f"PYTHON OK rank={rank}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # print, so that the Go test shows why
        print(f"PYTHON FAILED: {e!r}", flush=True)
        sys.exit(1)
