"""Specification of the torch models: shapes and range, mask honesty, the fusion4 variants, errors, fitting."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from emo.errors import ConfigError
from emo.models import MODELS, create_model, list_models
from emo.models.blocks import masked_mean

B, T, TA, DV, DA = 3, 5, 7, 8, 6  # Ta != T on purpose: the models must not assume equal lengths
SMALL = {"d_model": 16, "heads": 4, "ff": 32}
STRUCTURAL = {"input_dim": DV, "video_dim": DV, "audio_dim": DA, "frames": T}

FUSION_CASES = [
    ("fusion1", {}),
    ("fusion2", SMALL),
    ("fusion3", SMALL),
    *[("fusion4", {**SMALL, "variant": v}) for v in ("v1", "v2", "v3")],
]
FUSION_IDS = ["fusion1", "fusion2", "fusion3", "fusion4-v1", "fusion4-v2", "fusion4-v3"]


def audio_mask() -> Tensor:
    """Sample 0: all audio real; sample 1: first 3 steps real; sample 2: silent (no real step)."""
    mask = torch.zeros(B, TA, dtype=torch.bool)
    mask[0] = True
    mask[1, :3] = True
    return mask


def inputs_for(model: nn.Module, audio_dim: int = DA) -> dict[str, Tensor]:
    """The batch a model of this input kind receives."""
    g = torch.Generator().manual_seed(0)
    if model.input_kind == "frame":
        return {model.modality: torch.randn(B, audio_dim if model.modality == "audio" else DV, generator=g)}
    if model.input_kind == "window":
        return {"video": torch.randn(B, T, DV, generator=g)}
    return {"video": torch.randn(B, T, DV, generator=g), "audio": torch.randn(B, TA, DA, generator=g), "audio_mask": audio_mask()}


def build(name: str, **kwargs: object) -> nn.Module:
    kw = {**STRUCTURAL, **kwargs}
    if name == "audio":
        kw["input_dim"] = DA
    return create_model(name, **kw).eval()


ALL_CASES = [(name, {}) for name in list_models() if name != "fusion4"] + FUSION_CASES[3:]
ALL_IDS = [name for name in list_models() if name != "fusion4"] + FUSION_IDS[3:]


@pytest.mark.parametrize(("name", "kwargs"), ALL_CASES, ids=ALL_IDS)
def test_every_model_predicts_a_finite_valence_arousal_pair_in_minus_one_to_one(name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = build(name, **kwargs)
    with torch.no_grad():
        out = model(**inputs_for(model))
    assert out.shape == (B, 2)
    assert torch.isfinite(out).all()
    assert out.abs().max() <= 1.0


def test_registry_covers_every_thesis_model_family() -> None:
    assert list_models() == ["audio", "ffnn", "fusion1", "fusion2", "fusion3", "fusion4", "video"]
    assert set(MODELS) == set(list_models())


@pytest.mark.parametrize("pooling", ["avg", "max", "conv1d"])
def test_video_model_supports_each_thesis_pooling(pooling: str) -> None:
    torch.manual_seed(0)
    model = build("video", pooling=pooling, hidden=16)
    out = model(video=torch.randn(B, T, DV))
    assert out.shape == (B, 2) and torch.isfinite(out).all()


def test_audio_model_reads_the_audio_input_not_the_video() -> None:
    model = build("audio")
    x = torch.randn(B, DA)
    assert torch.equal(model(audio=x), model(video=torch.randn(B, DV), audio=x))
    with pytest.raises(ValueError, match="audio"):
        model(video=torch.randn(B, DV))


@pytest.mark.parametrize(("name", "kwargs"), FUSION_CASES, ids=FUSION_IDS)
def test_padded_audio_steps_do_not_change_the_output(name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = build(name, **kwargs)
    batch = inputs_for(model)
    padded = ~batch["audio_mask"]
    noisy = batch["audio"].clone()
    noisy[padded] = torch.randn(int(padded.sum()), DA) * 100.0
    nan_padded = batch["audio"].masked_fill(padded.unsqueeze(-1), float("nan"))
    with torch.no_grad():
        ref = model(**batch)
        assert torch.allclose(model(**{**batch, "audio": noisy}), ref, atol=1e-6)
        # Even NaN padding (a careless loader) must not leak into the prediction.
        assert torch.allclose(model(**{**batch, "audio": nan_padded}), ref, atol=1e-6)


@pytest.mark.parametrize(("name", "kwargs"), FUSION_CASES, ids=FUSION_IDS)
def test_extra_padding_gets_no_attention_weight(name: str, kwargs: dict) -> None:
    """Appending padded steps must not move the output: padding is invisible, not merely zero-valued."""
    torch.manual_seed(0)
    model = build(name, **kwargs)
    batch = inputs_for(model)
    longer = {
        **batch,
        "audio": torch.cat([batch["audio"], torch.randn(B, 4, DA)], dim=1),  # (B, Ta + 4, Da)
        "audio_mask": torch.cat([batch["audio_mask"], torch.zeros(B, 4, dtype=torch.bool)], dim=1),
    }
    with torch.no_grad():
        assert torch.allclose(model(**longer), model(**batch), atol=1e-6)


@pytest.mark.parametrize(("name", "kwargs"), FUSION_CASES, ids=FUSION_IDS)
def test_a_silent_sample_with_no_valid_audio_gives_a_finite_prediction(name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = build(name, **kwargs).train()  # train mode too: gradients must be finite as well
    batch = inputs_for(model)
    batch["audio_mask"] = torch.zeros(B, TA, dtype=torch.bool)
    out = model(**batch)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(("name", "kwargs"), FUSION_CASES[1:], ids=FUSION_IDS[1:])
def test_valid_audio_does_change_the_output(name: str, kwargs: dict) -> None:
    """Guards the mask tests against a model that simply ignores audio."""
    torch.manual_seed(0)
    model = build(name, **kwargs)
    batch = inputs_for(model)
    changed = batch["audio"].clone()
    changed[0, 0] += 3.0  # a real step of sample 0
    with torch.no_grad():
        diff = (model(**{**batch, "audio": changed}) - model(**batch)).abs()
    assert diff[0].max() > 1e-4
    assert diff[1:].max() == 0.0  # other samples are untouched


def _capture_second_block_contexts(model: nn.Module) -> list[Tensor]:
    """Record what each second block's attention projects into keys/values."""
    seen: list[Tensor] = []
    for block in model.blocks:
        block.attn.to_kv.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    return seen


@pytest.mark.parametrize(("variant", "source"), [("v1", "running"), ("v2", "video"), ("v3", "audio")])
def test_fusion4_second_blocks_attend_to_what_the_variant_names(variant: str, source: str) -> None:
    torch.manual_seed(0)
    model = build("fusion4", **SMALL, variant=variant, depth=2)
    encoded: dict[str, Tensor] = {}
    model.video_encoder.register_forward_hook(lambda _m, _a, out: encoded.__setitem__("video", out.transpose(1, 2)))
    model.audio_encoder.register_forward_hook(lambda _m, _a, out: encoded.__setitem__("audio", out))
    contexts = _capture_second_block_contexts(model)
    batch = inputs_for(model)
    with torch.no_grad():
        model(**batch)
    assert len(contexts) == 2
    expected_len = {"running": T, "video": T, "audio": TA}[source]
    assert [c.shape[1] for c in contexts] == [expected_len, expected_len]
    if source == "running":  # self-attention: keys come from the previous block's output, not an encoder
        assert not torch.equal(contexts[0], encoded["video"])
    else:
        # Padded audio steps are zeroed before projection, so compare on the valid steps only.
        keep = batch["audio_mask"].unsqueeze(-1) if source == "audio" else torch.ones(1, 1, 1, dtype=torch.bool)
        for context in contexts:
            assert torch.equal(torch.where(keep, context, 0.0), torch.where(keep, encoded[source], 0.0))


def test_masked_mean_ignores_padding_and_gives_zero_for_all_padding_rows() -> None:
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[5.0], [7.0], [9.0]], [[float("nan")], [2.0], [2.0]]])
    mask = torch.tensor([[True, True, False], [True, True, True], [False, False, False]])
    assert torch.equal(masked_mean(x, mask), torch.tensor([[2.0], [7.0], [0.0]]))


def test_unknown_model_name_is_a_config_error_listing_the_known_models() -> None:
    with pytest.raises(ConfigError, match=r"'fusion9'.*fusion1.*fusion4.*video"):
        create_model("fusion9")


def test_unknown_pooling_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"'median'.*avg, max, conv1d"):
        create_model("video", input_dim=DV, frames=T, pooling="median")


def test_unknown_fusion4_variant_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"'v9'.*v1, v2, v3"):
        create_model("fusion4", video_dim=DV, audio_dim=DA, variant="v9")


def test_unknown_hyperparameter_is_a_config_error_naming_model_and_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"'fusion2'.*hiden.*d_model.*heads.*depth"):
        create_model("fusion2", video_dim=DV, audio_dim=DA, hiden=64)


def test_missing_required_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'ffnn' needs input_dim"):
        create_model("ffnn", hidden=8)


def test_heads_must_divide_d_model() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        create_model("fusion3", video_dim=DV, audio_dim=DA, d_model=10, heads=4)


def test_structural_keys_a_model_does_not_use_are_dropped_but_still_reach_models_that_do() -> None:
    model = create_model("ffnn", **STRUCTURAL, hidden=8)  # ffnn has no video_dim/audio_dim/frames
    assert model.net[0].in_features == DV
    assert create_model("video", **STRUCTURAL, pooling="conv1d").conv.kernel_size == (T,)


def test_fusion4_v2_overfits_a_small_batch() -> None:
    torch.manual_seed(0)
    n = 32
    video, audio = torch.randn(n, T, DV), torch.randn(n, TA, DA)
    mask = torch.rand(n, TA) < 0.7
    mask[:4] = False  # some silent samples among them
    target = torch.rand(n, 2) * 1.6 - 0.8  # std ~0.46
    model = build("fusion4", d_model=32, heads=4, ff=64, variant="v2", dropout=0.0).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(200):
        opt.zero_grad()
        loss = ((model(video, audio, mask) - target) ** 2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        rmse = ((model.eval()(video, audio, mask) - target) ** 2).mean().sqrt().item()
    assert target.std().item() > 0.4
    assert rmse < 0.05, rmse  # observed ~1e-5 across seeds; label std ~0.46


# --- windows padded at the start (clips shorter than the window) -----------------------------------------

WINDOW_CASES = [("video", {"pooling": p}) for p in ("avg", "max", "conv1d")] + FUSION_CASES
WINDOW_IDS = [f"video-{p}" for p in ("avg", "max", "conv1d")] + FUSION_IDS


def video_mask() -> Tensor:
    """Sample 0: a full window; sample 1: two padded steps first; sample 2: only the last step is real."""
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, :2] = False
    mask[2, :-1] = False
    return mask


@pytest.mark.parametrize(("name", "kwargs"), WINDOW_CASES, ids=WINDOW_IDS)
def test_padded_video_steps_do_not_change_the_output(name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = build(name, **kwargs)
    batch = {**inputs_for(model), "video_mask": video_mask()}
    padded = ~batch["video_mask"]
    noisy = batch["video"].clone()
    noisy[padded] = torch.randn(int(padded.sum()), DV) * 100.0
    nan_padded = batch["video"].masked_fill(padded.unsqueeze(-1), float("nan"))
    with torch.no_grad():
        ref = model(**batch)
        assert torch.isfinite(ref).all()
        assert torch.allclose(model(**{**batch, "video": noisy}), ref, atol=1e-5)
        assert torch.allclose(model(**{**batch, "video": nan_padded}), ref, atol=1e-5)
        # a full window with a mask of all True is the unmasked model
        full = {k: v[:1] for k, v in batch.items()}
        assert torch.allclose(model(**full), model(**{k: v for k, v in full.items() if k != "video_mask"}),
                              atol=1e-5)


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_the_gru_reads_a_padded_window_as_the_short_clip_alone(pooling: str) -> None:
    torch.manual_seed(0)
    model = build("video", pooling=pooling)
    clip = torch.randn(1, 3, DV)  # three real frames
    padded = torch.cat([torch.randn(1, T - 3, DV), clip], dim=1)
    mask = torch.arange(T)[None] >= T - 3
    with torch.no_grad():
        assert torch.allclose(model(video=padded, video_mask=mask), model(video=clip), atol=1e-6)


def test_fusion4_reads_a_padded_window_as_the_short_clip_alone() -> None:
    """Fusion 4 has no positional encoding and its Conv1d pads with zeros: padding is exactly invisible."""
    torch.manual_seed(0)
    model = build("fusion4", **SMALL, variant="v2")
    batch = inputs_for(model)
    clip = batch["video"][:, -3:]
    mask = (torch.arange(T)[None] >= T - 3).expand(B, T)
    with torch.no_grad():
        short = model(video=clip, audio=batch["audio"], audio_mask=batch["audio_mask"])
        assert torch.allclose(model(**batch, video_mask=mask), short, atol=1e-5)
