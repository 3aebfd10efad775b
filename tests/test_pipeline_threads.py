"""`run.threads`: training on the CPU runs torch with the configured intra-op threads (default 1)."""

from __future__ import annotations


def test_training_on_the_cpu_uses_the_configured_torch_threads(tmp_path):
    import torch

    from hieramas_gnn.commands.train import train_from_config
    from hieramas_gnn.mas.testing import FakeClient
    from tests.test_train_stage1 import _cfg, _reply

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        train_from_config(_cfg(tmp_path, "stage1.steps=1", "run.threads=1", "topology.classifier.epochs=1",
                               "topology.n_candidates=2"), client=FakeClient(reply=_reply))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
