"""The method's config sections: the student network and its online distillation schedule (PAPER.md
defaults, except where ``odist.config`` says), each with its own ``validate``."""

from __future__ import annotations

from dataclasses import dataclass

from odist.errors import check_config

MAX_LR = 10.0  # far above any useful rate; larger ones overflow the optimiser's float32 step


@dataclass
class StudentConfig:
    """JITNet knobs (PAPER.md: width multiplier, units per block, input scale)."""

    width: float = 1.0
    units: int = 1
    input_scale: float = 1.0
    # Normalise with each frame's own batch statistics at inference as in training, which keeps
    # inference consistent with the single-frame updates and robust to lighting drift. Running statistics
    # folded into the convolutions infer 12-18% faster on the CPU but lose accuracy (bench/normalisation.py):
    # the last keyframe's statistics 0.011-0.039 mIoU (person IoU on the real clip), momentum 0.1 0.027 on
    # static_easy. So per-frame statistics stay the default.
    batch_stats_at_inference: bool = True
    # With batch_stats_at_inference=false: how far each training forward moves BatchNorm's running statistics
    # (1.0: inference uses the last keyframe's statistics). Inference then folds them into the convolutions.
    running_stats_momentum: float = 0.1
    # Feed the stem's half- and quarter-resolution features to the head: object boundaries drawn at 2x
    # rather than the decoder's 8x subsampling (+20% FLOPs; false = the paper's head exactly).
    fine_skips: bool = True

    def validate(self) -> StudentConfig:
        s = self
        check_config(0.05 <= s.width <= 4.0, "student.width", "a width multiplier in [0.05, 4]")
        check_config(1 <= s.units <= 8, "student.units", "1..8 residual units per block")
        check_config(0.1 <= s.input_scale <= 1.0, "student.input_scale", "a scale in [0.1, 1]")
        check_config(0.0 < s.running_stats_momentum <= 1.0, "student.running_stats_momentum", "a momentum in (0, 1]")
        return self


@dataclass
class DistillConfig:
    """The online distillation schedule and optimiser (PAPER.md defaults)."""

    # The paper's ladder. Longer ones (8..256) were measured with the triggers on: cheaper on settled
    # cameras but less accurate (traffic 0.662 against 0.788 mIoU), so 64 stays the top rung.
    strides: tuple[int, ...] = (8, 16, 32, 64)
    max_updates: int = 8
    accuracy_threshold: float = 0.8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 4e-5
    optimizer: str = "sgd"
    # Which keyframe accuracy moves the stride ladder: the paper's "after_updates" (can the student fit
    # this keyframe within max_updates?) or "before_updates" (how well did it do on this unseen frame?).
    stride_signal: str = "after_updates"
    # Classes covering less than this fraction of a keyframe (in the teacher's labels and the student's
    # prediction) are left out of its min per-class IoU; 0 = the paper's test over every class present.
    min_class_fraction: float = 0.0
    foreground_weight: float = 10.0
    box_dilation: float = 0.15
    # Weight of a soft-IoU term added to the cross-entropy (0 = the paper's loss). It gives every class
    # in the keyframe equal pull, as the min per-class IoU test does, so small objects fit in fewer updates.
    iou_loss_weight: float = 1.0
    replay_buffer_size: int = 0
    replay_samples: int = 0
    # Each keyframe's updates also train on one copy of it seen by a moved camera: a crop of 1/s of the
    # frame at a random place, s drawn from [1, 1 + augment_zoom], resized back (a pan and a zoom). 0 = off.
    augment_zoom: float = 0.0
    # Stop asking the teacher after this many keyframes (0 = never): the "frozen student" baseline.
    freeze_after_keyframes: int = 0
    # Keep inferring while the teacher labels a keyframe, learning from the labels when they arrive (one
    # update per following frame). Off: the paper's synchronous loop. Live cameras always overlap.
    overlap_labels: bool = False
    # The keyframe policy beyond the ladder (odist/distill/policy.py); 0 / "climb" switches a rule off.
    # A cut is a keyframe at once. cut_rule "jump": a frame whose scene signature jumps from the previous
    # frame's (camera motion of up to 2 thumbnail cells taken out) by more than cut_threshold and more than
    # cut_contrast times the stream's recent median jump; "keyframe" (the rule before): a frame whose
    # signature lies more than cut_threshold from the last keyframe's.
    cut_rule: str = "jump"
    cut_threshold: float = 0.1
    cut_contrast: float = 5.0
    # How a cut moves the ladder: "reset" to the lowest rung (then one move), or "test": the student's
    # accuracy on the cut's frame before any update decides (it handles the new view: the ladder moves as
    # on any keyframe; it does not: the lowest rung, and the next keyframe after the lowest stride);
    # "recover": as "test", and the first later keyframe the student handles before its updates climbs
    # straight back to the rung held before the cut.
    cut_ladder: str = "reset"
    # A frame whose signature lies this far from the last keyframe's is a keyframe; the ladder moves as
    # on a ladder keyframe (no restart). 0 = off.
    drift_threshold: float = 0.1
    # A frame on which the student's confidence falls this far below its value on the first frame after
    # the last keyframe is a keyframe.
    confidence_drop: float = 0.1
    # A frame on which the student's foreground has moved this far (1 - IoU) from its foreground on the
    # first frame after the last keyframe is a keyframe. 0 = off.
    flip_threshold: float = 0.0
    # flip_contrast > 0 makes the flip trigger self-normalised: a reading must also exceed flip_contrast
    # times the median of the stream's recent readings (objects that always move raise it), and
    # flip_threshold is its absolute floor. 0 = the threshold alone.
    flip_contrast: float = 0.0
    # The first boost_keyframes keyframes from a cut or drift keyframe on take at least boost_updates
    # updates, even past the accuracy test (0 = off); the cost model charges each one. A new view is where a
    # label teaches most (measured with the early budget and cut_ladder "reset": docs/benchmarks/keyframe-policy.md).
    boost_updates: int = 4
    boost_keyframes: int = 1
    # On a keyframe whose teacher labels hold no foreground: "climb" as on any other (the paper) or "hold"
    # the rung; with "hold", the rung climbs after empty_patience empty keyframes in a row (0 = never).
    empty_keyframes: str = "hold"
    empty_patience: int = 4
    # Student snapshots kept per camera view (0 = none): on a cut to a view seen before, the student
    # continues from that view's snapshot. Views are told apart by the cut threshold.
    view_bank_size: int = 0
    # Climbing onto a rung at or above this index needs a keyframe the student got right before its
    # updates (0 = off: the ladder's test alone), so a long ladder's top rungs wait for a settled student.
    handled_climb_from: int = 0
    # Climbing onto a rung at or above settle_from (0 = off) needs settle_passes passing keyframes in a row
    # on the rung below, so a long ladder's top rungs wait for a student that keeps passing.
    settle_from: int = 0
    settle_passes: int = 2  # passing keyframes in a row on the rung below before a climb onto settle_from
    # The first early_keyframes keyframes of a stream (0 = off) may take up to early_max_updates updates
    # each (the cost model charges every one): a new camera's student learns its view sooner.
    early_keyframes: int = 4
    early_max_updates: int = 16  # updates per keyframe at most on the first early_keyframes keyframes
    view_threshold: float = 0.1  # signatures of one view lie within this distance (the view bank)
    # A stream that begins from a checkpoint (--init, a manifest init, --warm-start fleet) starts its ladder
    # on warm_start_rung (0 = the lowest), and its first warm_start_lr_keyframes keyframes learn at
    # lr x warm_start_lr_scale.
    warm_start_rung: int = 0
    warm_start_lr_scale: float = 1.0
    warm_start_lr_keyframes: int = 2
    seed: int = 0  # the student's initial weights and updates (a synthetic scene's seed is source.seed)
    # Score the student on every frame against the teacher (--evaluate; its cost is reported apart).
    evaluate: bool = False
    max_frames: int | None = None  # stop each stream after this many frames (None: at its end)
    init: str | None = None  # warm-start every stream's student from this checkpoint (path or URI)

    def validate(self) -> DistillConfig:
        """Check every value (a ``ConfigError`` names the key); return self."""
        d = self
        check_config(d.max_frames is None or d.max_frames >= 1, "distill.max_frames", "a frame count >= 1, or null")
        check_config(d.init is None or bool(d.init), "distill.init", "a checkpoint path or URI, or null")
        check_config(len(d.strides) >= 1 and all(x >= 1 for x in d.strides)
                     and list(d.strides) == sorted(set(d.strides)), "distill.strides",
                     "an increasing list of positive frame strides, e.g. [8, 16, 32, 64]")
        check_config(0 <= d.max_updates <= 1000, "distill.max_updates", "0..1000 updates per keyframe")
        check_config(0.0 < d.accuracy_threshold <= 1.0, "distill.accuracy_threshold", "a value in (0, 1]")
        check_config(0 < d.lr <= MAX_LR, "distill.lr", f"a positive learning rate up to {MAX_LR:g}, e.g. 0.01")
        check_config(0 <= d.min_class_fraction < 1, "distill.min_class_fraction", "a fraction of the frame in [0, 1)")
        check_config(0 <= d.momentum < 1, "distill.momentum", "a value in [0, 1)")
        check_config(d.weight_decay >= 0, "distill.weight_decay", "a non-negative value")
        check_config(d.optimizer in ("sgd", "adam"), "distill.optimizer", "'sgd' or 'adam'")
        check_config(d.stride_signal in ("after_updates", "before_updates"), "distill.stride_signal",
                     "'after_updates' (the paper's) or 'before_updates'")
        check_config(d.foreground_weight >= 1, "distill.foreground_weight", "a weight >= 1")
        check_config(0 <= d.box_dilation <= 2, "distill.box_dilation", "a fraction in [0, 2]")
        check_config(d.iou_loss_weight >= 0, "distill.iou_loss_weight",
                     "a non-negative weight (0 = cross-entropy only)")
        check_config(d.replay_buffer_size >= 0 and d.replay_samples >= 0, "distill.replay_buffer_size",
                     "non-negative sizes")
        check_config(d.replay_samples <= d.replay_buffer_size, "distill.replay_samples",
                     "at most distill.replay_buffer_size samples per update")
        self._validate_policy()
        return self

    def _validate_policy(self) -> None:
        """Check the keyframe policy's keys: triggers, ladder moves, view bank and warm start."""
        d = self
        check_config(0 <= d.cut_threshold <= 2, "distill.cut_threshold",
                     "0 (off) or a scene-signature distance in (0, 2], e.g. 0.1")
        check_config(d.cut_rule in ("jump", "keyframe"), "distill.cut_rule", "'jump' or 'keyframe' (the rule before)")
        check_config(d.cut_contrast >= 1, "distill.cut_contrast", "a factor >= 1 over the recent frame-to-frame motion")
        check_config(d.cut_ladder in ("reset", "test", "recover"), "distill.cut_ladder",
                     "'reset', 'test' or 'recover'")
        check_config(0 <= d.flip_threshold < 1, "distill.flip_threshold", "0 (off) or a foreground change in (0, 1)")
        check_config(d.flip_contrast == 0 or d.flip_contrast >= 1, "distill.flip_contrast",
                     "0 (off) or a factor >= 1 over the recent flip readings")
        check_config(0 <= d.boost_updates <= 1000 and d.boost_keyframes >= 1, "distill.boost_updates",
                     "0 (off) .. 1000 updates, on boost_keyframes >= 1 keyframes")
        check_config(0 <= d.augment_zoom <= 1, "distill.augment_zoom", "0 (off) or a zoom range in (0, 1], e.g. 0.2")
        check_config(0 <= d.drift_threshold <= 2, "distill.drift_threshold",
                     "0 (off) or a scene-signature distance in (0, 2], e.g. 0.1")
        check_config(0 < d.view_threshold <= 2, "distill.view_threshold", "a scene-signature distance in (0, 2]")
        check_config(0 <= d.confidence_drop < 1, "distill.confidence_drop", "0 (off) or a confidence drop in (0, 1)")
        check_config(d.empty_keyframes in ("climb", "hold"), "distill.empty_keyframes",
                     "'climb' (the paper's) or 'hold'")
        check_config(0 <= d.handled_climb_from < len(d.strides), "distill.handled_climb_from",
                     f"0 (off) or a rung of distill.strides, 1 .. {len(d.strides) - 1}")
        check_config(0 <= d.settle_from < len(d.strides), "distill.settle_from",
                     f"0 (off) or a rung of distill.strides, 1 .. {len(d.strides) - 1}")
        check_config(d.settle_passes >= 1, "distill.settle_passes", "1 or more passing keyframes in a row")
        check_config(d.early_keyframes >= 0, "distill.early_keyframes", "0 (off) or a keyframe count")
        check_config(0 <= d.early_max_updates <= 1000, "distill.early_max_updates", "0..1000 updates per keyframe")
        check_config(0 <= d.view_bank_size <= 64, "distill.view_bank_size", "0 (off) .. 64 snapshots")
        check_config(not d.view_bank_size or d.cut_threshold > 0, "distill.view_bank_size",
                     "0 unless distill.cut_threshold is set (a cut recalls a view)")
        check_config(d.empty_patience >= 0, "distill.empty_patience", "0 (never climb on empty keyframes) or a count")
        check_config(0 <= d.warm_start_rung < len(d.strides), "distill.warm_start_rung",
                     f"a rung of distill.strides, 0 .. {len(d.strides) - 1}")
        check_config(d.warm_start_lr_scale > 0 and d.lr * d.warm_start_lr_scale <= MAX_LR,
                     "distill.warm_start_lr_scale",
                     f"a positive factor (1 = distill.lr) keeping distill.lr x the factor at most {MAX_LR:g}")
        check_config(d.warm_start_lr_keyframes >= 0, "distill.warm_start_lr_keyframes", "0 (none) or a keyframe count")
        check_config(d.freeze_after_keyframes >= 0, "distill.freeze_after_keyframes", "0 (never) or a keyframe count")
