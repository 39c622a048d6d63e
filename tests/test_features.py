"""phi + PCA, the pair dumps made with it, and the seeding of the trained stages (phi, the MDN): each against an
independent computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualspace.density import MDNConfig, fit_mdn, save_mdn


def test_phi_fit_save_load_and_pca_on_train_only(tmp_path):
    from dualspace.data import load_dataset
    from dualspace.features import Phi, PhiConfig, fit_phi

    s = load_dataset("hapt", seed=0).splits["train"]
    x, y = s.x[:600], s.label[:600]
    phi = fit_phi(x, y, "series", 6, PhiConfig(epochs=1, pca_dim=8, cnn_width=8, feature_dim=16), seed=0)
    feats, proj = phi(x)
    assert feats.shape == (600, 16) and proj.shape == (600, 8)
    np.testing.assert_allclose(phi.pca_mean, feats.mean(0), atol=1e-4)  # PCA centred on the train features
    np.testing.assert_allclose(proj.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(proj.std(0), 1, atol=0.02)  # whitened (ddof 0 vs 1)
    phi.save(tmp_path / "phi.pt")
    again = Phi.load(tmp_path / "phi.pt")
    np.testing.assert_allclose(again(x[:10])[1], proj[:10], atol=1e-5)
    assert again.info["source"] == "trained on the train split"


def test_phi_image_resnet_features_shape(tmp_path):
    from dualspace.features import PhiConfig, fit_phi

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(40, 1, 8, 8)).astype(np.float32)
    phi = fit_phi(x, np.arange(40) % 4, "image", 4, PhiConfig(epochs=1, batch_size=16, pca_dim=64), seed=0)
    f, y = phi(x)
    assert f.shape == (40, 512) and y.shape == (40, 40)  # PCA dim capped by the number of examples
    # a local torchvision ImageNet state dict (here a randomly initialised one in that format) is used as is
    from torchvision.models import resnet18

    state = resnet18(weights=None).state_dict()
    weights = tmp_path / "resnet18_imagenet.pth"
    torch.save(state, weights)
    frozen = fit_phi(x, np.arange(40) % 4, "image", 4, PhiConfig(weights=str(weights), pca_dim=8), seed=0)
    assert frozen.info["source"].startswith("ImageNet weights") and frozen.info["val_acc"] is None
    torch.testing.assert_close(frozen.net.net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    with pytest.raises(FileNotFoundError, match="phi.weights"):
        fit_phi(x, np.arange(40) % 4, "image", 4, PhiConfig(weights="/nonexistent.pth"), seed=0)


def test_pairs_wrong_width_is_named(tmp_path):
    from dualspace.artifacts import Pairs
    from dualspace.io import write_h5

    write_h5(tmp_path / "p.h5", {"e": np.zeros((3, 64), np.float32), "y": np.zeros((3, 5), np.float32),
                                 "label": np.zeros(3, np.int64)})
    with pytest.raises(ValueError, match=r"p\.h5: 'y' has width 5, expected 32. Delete it and rerun"):
        Pairs.read(tmp_path / "p.h5", y_dim=32)


def test_trained_stages_are_functions_of_the_seed(tmp_path):
    """phi and the MDN depend on the seed only, not on the global RNG state a process happens to have,
    and their files are byte-identical: what lets a SLURM run reproduce a local run's tau tables."""
    from dualspace.features import PhiConfig, fit_phi
    from dualspace.io import sha256_file

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((200, 3, 32)).astype(np.float32), np.arange(200) % 4
    e, ycont = np.eye(4, dtype=np.float32)[y], rng.standard_normal((200, 2)).astype(np.float32)
    cfg, mcfg = PhiConfig(epochs=1, pca_dim=4, cnn_width=8, feature_dim=8, batch_size=32), MDNConfig(max_epochs=3)
    digests = []
    for run, state in enumerate((1, 2)):
        torch.manual_seed(state)  # another import order or test order leaves another global state
        torch.rand(7)
        fit_phi(x, y, "series", 4, cfg, seed=0).save(tmp_path / f"phi{run}.pt")
        torch.manual_seed(state + 10)
        model, summary = fit_mdn(e, ycont, mcfg, seed=0)
        save_mdn(model, mcfg, summary, tmp_path / f"mdn{run}.pt")
        digests.append((sha256_file(tmp_path / f"phi{run}.pt"), sha256_file(tmp_path / f"mdn{run}.pt")))
    assert digests[0] == digests[1]


def test_build_net_draws_initial_weights_from_the_seed_only():
    """Every trained network (phi, the TSTR classifiers) is built by build_net: its initial weights come
    from the seed, whatever the global RNG state, and building one leaves the global RNG as it was."""
    from dualspace.features import PhiConfig, build_net

    cfg = PhiConfig(cnn_width=8, feature_dim=8)
    states = []
    for global_state in (5, 6):
        torch.manual_seed(global_state)
        states.append(build_net("series", (3, 32), 3, cfg, seed=1).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    other = build_net("series", (3, 32), 3, cfg, seed=2).state_dict()
    assert not all(torch.equal(states[0][k], other[k]) for k in states[0])
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    build_net("image", (1, 8, 8), 3, PhiConfig(), seed=1)
    assert torch.equal(torch.rand(3), expected)
