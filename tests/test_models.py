"""Specification of the torch models: shapes and range, mask honesty, the fusion4 variants, errors, fitting."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from emo.core.config import MODEL_KINDS
from emo.core.errors import ConfigError
from emo.models import MODELS, create_model, list_models
from emo.models.blocks import Attention, masked_mean

B, T, TA, DV, DA = 3, 5, 7, 8, 6  # Ta != T on purpose: the models must not assume equal lengths
SMALL = {"d_model": 16, "heads": 4, "ff": 32}
STRUCTURAL = {"input_dim": DV, "video_dim": DV, "audio_dim": DA, "frames": T}

EMO_FUSION_CASES = [
    ("fusion1", {}),
    ("fusion2", SMALL),
    ("fusion3", SMALL),
    *[("fusion4", {**SMALL, "variant": v}) for v in ("v1", "v2", "v3")],
]
EMO_FUSION_IDS = ["fusion1", "fusion2", "fusion3", "fusion4-v1", "fusion4-v2", "fusion4-v3"]
# Every fusion model in both architectures (emo's and the thesis's), plus Fusion 4's attention readout:
# the mask and silence specifications below hold for each.
FUSION_CASES = [
    (name, {**kwargs, "arch": arch})
    for name, kwargs in [*EMO_FUSION_CASES, ("fusion4", {**SMALL, "variant": "v2", "readout": "attention"})]
    for arch in ("emo", "thesis")
]
FUSION_IDS = [f"{case}-{arch}" for case in [*EMO_FUSION_IDS, "fusion4-v2-attention"] for arch in ("emo", "thesis")]


def audio_mask() -> Tensor:
    """Sample 0: all audio real; sample 1: first 3 steps real; sample 2: silent (no real step)."""
    mask = torch.zeros(B, TA, dtype=torch.bool)
    mask[0] = True
    mask[1, :3] = True
    return mask


def inputs_for(model: nn.Module, audio_dim: int = DA) -> dict[str, Tensor]:
    """The batch a model (made by `build`) receives: its family's input kind, as emo.core.config declares it."""
    g = torch.Generator().manual_seed(0)
    kind = MODEL_KINDS[model.registered_as]
    if kind in ("frame", "audio"):
        return {model.modality: torch.randn(B, audio_dim if model.modality == "audio" else DV, generator=g)}
    if kind == "sequence":  # a segment's frames, both modalities aligned per frame
        return {"video": torch.randn(B, T, DV, generator=g), "audio": torch.randn(B, T, DA, generator=g)}
    if kind == "window":
        return {"video": torch.randn(B, T, DV, generator=g)}
    return {
        "video": torch.randn(B, T, DV, generator=g),
        "audio": torch.randn(B, TA, DA, generator=g),
        "audio_mask": audio_mask(),
    }


def build(name: str, **kwargs: object) -> nn.Module:
    kw = {**STRUCTURAL, **kwargs}
    if name == "audio":
        kw["input_dim"] = DA
    model = create_model(name, **kw).eval()
    model.registered_as = name
    return model


ALL_CASES = [(name, {}) for name in list_models() if name != "fusion4"] + EMO_FUSION_CASES[3:]
ALL_IDS = [name for name in list_models() if name != "fusion4"] + EMO_FUSION_IDS[3:]


@pytest.mark.parametrize(("name", "kwargs"), ALL_CASES, ids=ALL_IDS)
def test_every_model_predicts_a_finite_valence_arousal_pair_in_minus_one_to_one(name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = build(name, **kwargs)
    with torch.no_grad():
        out = model(**inputs_for(model))
    assert out.shape == ((B, T, 2) if MODEL_KINDS[name] == "sequence" else (B, 2))  # a sequence: every frame
    assert torch.isfinite(out).all()
    # the head bounds the output, whatever the weights: push the last layer far out and it stays in [-1, 1]
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias.fill_(50.0)
        pushed = model(**inputs_for(model))
    assert pushed.max() <= 1.0 and pushed.min() > 0.99


def test_registry_covers_every_thesis_model_family() -> None:
    assert list_models() == ["audio", "ffnn", "fusion1", "fusion2", "fusion3", "fusion4", "seq", "video"]
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
    assert out.shape == (B, 2)
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(("name", "kwargs"), FUSION_CASES[2:], ids=FUSION_IDS[2:])
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
    model = build("fusion4", **SMALL, variant=variant, repeats=2)
    encoded: dict[str, Tensor] = {}
    model.video_encoder.register_forward_hook(lambda _m, _a, out: encoded.__setitem__("video", out.transpose(1, 2)))
    model.audio_encoder.register_forward_hook(lambda _m, _a, out: encoded.__setitem__("audio", out))
    contexts = _capture_second_block_contexts(model)
    queries_and_contexts: list[tuple[Tensor, Tensor]] = []
    for block in model.blocks:
        block.attn.register_forward_pre_hook(lambda _m, args: queries_and_contexts.append((args[0], args[1])))
    batch = inputs_for(model)
    with torch.no_grad():
        model(**batch)
    assert len(contexts) == 2
    expected_len = {"running": T, "video": T, "audio": TA}[source]
    assert [c.shape[1] for c in contexts] == [expected_len, expected_len]
    if source == "running":  # self-attention: each block's keys and values come from its own queries
        assert all(torch.equal(q, kv) for q, kv in queries_and_contexts)
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
        assert torch.allclose(model(**full), model(**{k: v for k, v in full.items() if k != "video_mask"}), atol=1e-5)


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_the_gru_reads_a_padded_window_as_the_short_clip_alone(pooling: str) -> None:
    torch.manual_seed(0)
    model = build("video", pooling=pooling)
    clip = torch.randn(1, 3, DV)  # three real frames
    padded = torch.cat([torch.randn(1, T - 3, DV), clip], dim=1)
    mask = torch.arange(T)[None] >= T - 3
    with torch.no_grad():
        assert torch.allclose(model(video=padded, video_mask=mask), model(video=clip), atol=1e-6)


@pytest.mark.parametrize("arch", ["emo", "thesis"])
@pytest.mark.parametrize("readout", ["mean", "attention"])
def test_fusion4_reads_a_padded_window_as_the_short_clip_alone(arch: str, readout: str) -> None:
    """Its Conv1d pads with zeros and its positions (attention readout) count back from the last step:
    padding at the start is exactly invisible."""
    torch.manual_seed(0)
    model = build("fusion4", **SMALL, variant="v2", arch=arch, readout=readout)
    batch = inputs_for(model)
    clip = batch["video"][:, -3:]
    mask = (torch.arange(T)[None] >= T - 3).expand(B, T)
    with torch.no_grad():
        short = model(video=clip, audio=batch["audio"], audio_mask=batch["audio_mask"])
        assert torch.allclose(model(**batch, video_mask=mask), short, atol=1e-5)


# --- the thesis's architectures (arch="thesis") beside emo's (arch="emo") ------------------------------


def test_attention_without_null_slot_reads_nothing_from_an_all_padding_context() -> None:
    torch.manual_seed(0)
    attn = Attention(8, 2, 0.0, null_kv=False)
    assert not any("null" in name for name, _ in attn.named_parameters())
    x, context = torch.randn(2, 3, 8, requires_grad=True), torch.randn(2, 4, 8)
    mask = torch.tensor([[True, True, False, False], [False, False, False, False]])
    out = attn(x, context, mask)
    assert torch.equal(out[1], torch.zeros(3, 8))  # no valid step: exactly zero, not NaN
    # masked keys get weight exactly 0: the same as attending to the valid steps alone
    assert torch.allclose(out[0], attn(x[:1], context[:1, :2])[0], atol=1e-6)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in attn.parameters())


def test_fusion1_thesis_head_is_dense_relu_output_without_dropout_or_tanh() -> None:
    model = build("fusion1", arch="thesis", hidden=16)
    assert [type(m) for m in model.head] == [nn.Linear, nn.ReLU, nn.Linear]
    assert (model.head[0].in_features, model.head[2].out_features) == (DV + DA, 2)
    assert not any(isinstance(m, (nn.Dropout, nn.Tanh)) for m in model.modules())
    assert any(isinstance(m, nn.Tanh) for m in build("fusion1").modules())  # emo's head keeps them


@pytest.mark.parametrize("name", ["fusion2", "fusion3"])
def test_thesis_fusion2_and_3_attend_at_the_video_width_with_no_projection_or_null_slot(name: str) -> None:
    model = build(name, **SMALL, arch="thesis")  # d_model=16 is ignored: the width is DV
    assert isinstance(model.video_proj, nn.Identity)
    assert (model.audio_proj.in_features, model.audio_proj.out_features) == (DA, DV)  # audio to the video width
    assert not [n for n, _ in model.named_parameters() if "null_kv" in n]
    assert model.head[0].in_features == DV
    emo = build(name, **SMALL)
    assert isinstance(emo.video_proj, nn.Linear) and [n for n, _ in emo.named_parameters() if "null_kv" in n]


def test_thesis_fusion2_keeps_positional_encoding_and_drops_the_modality_embedding() -> None:
    model = build("fusion2", **SMALL, arch="thesis")
    assert model.modality is None and not isinstance(model.pos, nn.Identity)
    assert len(model.blocks) == 2 and len(build("fusion2", **SMALL, arch="thesis", depth=3).blocks) == 3
    assert build("fusion2", **SMALL).modality.shape == (2, 16)


def test_thesis_fusion3_has_no_positional_encoding() -> None:
    assert isinstance(build("fusion3", **SMALL, arch="thesis").pos, nn.Identity)
    assert not isinstance(build("fusion3", **SMALL).pos, nn.Identity)


@pytest.mark.parametrize("name", ["fusion2", "fusion3"])
def test_thesis_width_that_heads_do_not_divide_is_a_config_error_suggesting_heads(name: str) -> None:
    with pytest.raises(ConfigError, match=r"video feature width \(10\).*heads=4.*heads=2"):
        create_model(name, video_dim=10, audio_dim=DA, heads=4, arch="thesis")


@pytest.mark.parametrize(("variant", "thesis_blocks", "emo_blocks"), [("v1", 1, 2), ("v2", 2, 2), ("v3", 2, 2)])
def test_fusion4_second_blocks_thesis_repeats_only_the_cross_attention(
    variant: str, thesis_blocks: int, emo_blocks: int
) -> None:
    assert len(build("fusion4", **SMALL, variant=variant, repeats=2, arch="thesis").blocks) == thesis_blocks
    assert len(build("fusion4", **SMALL, variant=variant, repeats=2).blocks) == emo_blocks


def test_fusion4_repeats_defaults_to_three() -> None:
    assert len(build("fusion4", **SMALL, variant="v2").blocks) == 3


def test_fusion4_thesis_head_is_one_linear_and_no_block_has_a_null_slot() -> None:
    model = build("fusion4", **SMALL, arch="thesis")
    assert isinstance(model.head, nn.Linear)
    assert (model.head.in_features, model.head.out_features) == (16, 2)
    assert not [n for n, _ in model.named_parameters() if "null_kv" in n]
    emo = build("fusion4", **SMALL)
    assert [type(m) for m in emo.head] == [nn.Linear, nn.ReLU, nn.Linear, nn.Tanh]


@pytest.mark.parametrize("name", ["fusion1", "fusion2", "fusion3", "fusion4"])
def test_unknown_arch_is_a_config_error_listing_the_choices(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"'paper'.*{name}.*emo.*thesis"):
        create_model(name, video_dim=DV, audio_dim=DA, arch="paper")


def test_unknown_fusion4_readout_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"'max'.*mean.*attention"):
        create_model("fusion4", video_dim=DV, audio_dim=DA, readout="max")


def test_fusion4_depth_is_now_called_repeats() -> None:
    with pytest.raises(ConfigError, match=r"'fusion4'.*depth.*repeats"):
        create_model("fusion4", video_dim=DV, audio_dim=DA, depth=2)


def test_only_fusion_models_take_arch() -> None:
    for name in ("ffnn", "audio", "video"):
        with pytest.raises(ConfigError, match="arch"):
            create_model(name, **STRUCTURAL, arch="thesis")


@pytest.mark.parametrize("arch", ["emo", "thesis"])
def test_fusion4_attention_readout_knows_the_order_of_video_steps_while_mean_does_not(arch: str) -> None:
    """kernel_size=1: no Conv1d edge marks the last step, so only positions can."""
    torch.manual_seed(0)
    batch = inputs_for(build("fusion4", **SMALL))
    reversed_video = {**batch, "video": batch["video"].flip(1)}
    with torch.no_grad():
        mean = build("fusion4", **SMALL, kernel_size=1, arch=arch)
        assert torch.allclose(mean(**reversed_video), mean(**batch), atol=1e-5)
        attention = build("fusion4", **SMALL, kernel_size=1, arch=arch, readout="attention")
        assert (attention(**reversed_video) - attention(**batch)).abs().max() > 1e-3


def _fit_last_step(readout: str) -> float:
    """Held-out MSE of a tiny Fusion 4 trained to output the last video step's first feature."""
    torch.manual_seed(0)
    n = 64
    video, audio = torch.randn(2 * n, T, 4), torch.randn(2 * n, 3, 3)
    target = 0.5 * video[:, -1, :1].clamp(-1.8, 1.8).expand(-1, 2)  # the last (labelled) step, in (-1, 1)
    model = create_model(
        "fusion4",
        video_dim=4,
        audio_dim=3,
        d_model=8,
        heads=2,
        ff=16,
        repeats=1,
        dropout=0.0,
        kernel_size=1,
        readout=readout,
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        ((model(video[:n], audio[:n]) - target[:n]) ** 2).mean().backward()
        opt.step()
    with torch.no_grad():
        return ((model(video[n:], audio[n:]) - target[n:]) ** 2).mean().item()


def test_fusion4_attention_readout_learns_to_read_the_last_step_and_mean_readout_cannot() -> None:
    attention, mean = _fit_last_step("attention"), _fit_last_step("mean")
    # target variance ~0.16; observed ~0.005 (attention) vs ~0.27 (mean, no better than guessing)
    assert attention < 0.05, attention
    assert mean > 0.1, mean
