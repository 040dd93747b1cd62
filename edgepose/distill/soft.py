"""Soft targets: the teacher's own joint heatmaps as a second training target (``edgepose distill --soft-weight``).

The pseudo-labels give a top-down heatmap student hard targets: a Gaussian at each joint the teacher was confident
about, nothing for the others. With ``--soft-weight W`` every training batch also goes through the teacher (a MoveNet
single-pose port, on the same augmented crops), and the student is pulled towards the teacher's keypoint heatmaps
as well: ``loss = (1 - W) * hard + W * soft`` (both the zoo's 0.5 * MSE), the soft term over every joint, so joints
without a label still learn how sure the teacher is about them.

Geometry: the student's crop (W x H) is padded left and right (or top and bottom) to a square with the value of a
black pixel, as the crops' own borders are, and resized to the teacher's input; the teacher's heatmap (stride 4 of
its input, cell c at input pixel 4c as MoveNet decodes it) is sampled at the student's cells (cell c at student
pixel stride * c, the zoo's heatmap codec). MoveNet's keypoint heatmap shows every person's joints (Google's
decoder picks the one near the regressed position), so each teacher map is kept only near the joint the teacher
picks (its own decode: ``MoveNetDecode``), under a Gaussian window of ``WINDOW_CELLS`` teacher cells.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgepose.errors import ConfigError

WINDOW_CELLS = 2.0  # sd, in teacher heatmap cells, of the window around the teacher's chosen joint


class SoftTargets:
    """Teacher heatmaps on a heatmap student's grid; ``step_loss`` mixes them into the training loss."""

    def __init__(self, teacher, student, weight: float):
        from edgepose.codecs import codec_from_dict
        from edgepose.codecs.graph_movenet import MoveNetDecode
        from edgepose.codecs.movenet import MoveNetCodec
        from edgepose.heads import get_head

        if not 0.0 < weight <= 1.0:
            raise ConfigError(f"--soft-weight must be in (0, 1] (the soft targets' share of the loss), got {weight}")
        tmeta, student_meta = teacher.edgepose_meta, student.edgepose_meta
        if hasattr(student, "forward_train"):
            raise ConfigError(f"soft targets: {student_meta.name} trains several stages (forward_train); expected a "
                              "one-output heatmap student")
        if not get_head(student_meta.kind).heatmaps:  # one map per joint, trained on (images, maps, weights)
            raise ConfigError(f"soft targets need a heatmap student; {student_meta.name} is {student_meta.kind!r}")
        if "heatmap_size" not in student_meta.codec:
            raise ConfigError(f"soft targets need the student's heatmap size; {student_meta.name}'s codec has none")
        codec = codec_from_dict(tmeta.codec)
        if not isinstance(codec, MoveNetCodec):
            raise ConfigError(f"soft targets need a MoveNet single-pose teacher (its keypoint heatmaps); "
                              f"{tmeta.name} has a {tmeta.codec.get('kind')!r} output")
        if tmeta.keypoints != student_meta.keypoints:
            raise ConfigError(f"teacher {tmeta.name} has {tmeta.keypoints!r} keypoints, the student "
                              f"{student_meta.keypoints!r}; expected one schema")
        self.teacher, self.weight = teacher.eval(), float(weight)
        self.decode = MoveNetDecode(codec)
        self.teacher_size = tuple(tmeta.input_size)  # (W, H)
        self.student_size = tuple(student_meta.input_size)
        self.heatmap_size = tuple(student_meta.codec["heatmap_size"])  # (w, h)
        s_mean, s_std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1)
                         for v in (student_meta.mean, student_meta.std))
        t_mean, t_std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in (tmeta.mean, tmeta.std))
        self._to_teacher = (s_std / t_std, (s_mean - t_mean) / t_std)  # x_t = a * x_s + b
        self._black = -s_mean / s_std  # a zero pixel in the student's normalisation

    @torch.no_grad()
    def targets(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) student inputs → (N, K, h, w) teacher heatmaps (0..1) at the student's heatmap cells."""
        w, h = self.student_size
        side = max(w, h)
        px, py = (side - w) // 2, (side - h) // 2
        square = self._black.expand(images.shape[0], 3, side, side).clone()
        square[:, :, py:py + h, px:px + w] = images
        a, b = self._to_teacher
        x = F.interpolate(a * square + b, size=self.teacher_size[::-1], mode="bilinear", align_corners=False)
        outs = self.teacher(x)
        heat = torch.sigmoid(outs[self.teacher.head_names.index("kpt_heatmap")])  # (N, K, Ht, Wt)
        heat = heat * self._window(self.decode(*outs), heat.shape[-2:])
        return self._resample(heat, side, px, py)

    def _window(self, kps: torch.Tensor, hw) -> torch.Tensor:
        """Gaussian windows (N, K, Ht, Wt) around the teacher's decoded joints."""
        ht, wt = hw
        cx = kps[..., 0] * wt / self.teacher_size[0]
        cy = kps[..., 1] * ht / self.teacher_size[1]
        gy = torch.arange(ht, dtype=torch.float32).view(1, 1, ht, 1)
        gx = torch.arange(wt, dtype=torch.float32).view(1, 1, 1, wt)
        d2 = (gx - cx[..., None, None]) ** 2 + (gy - cy[..., None, None]) ** 2
        return torch.exp(-d2 / (2 * WINDOW_CELLS ** 2))

    def _resample(self, heat: torch.Tensor, side: int, px: int, py: int) -> torch.Tensor:
        """Teacher maps over the padded square → the student's cells (cell c at student pixel stride * c)."""
        w, h = self.student_size
        hw, hh = self.heatmap_size
        ht, wt = heat.shape[-2:]
        # student pixel → square pixel → teacher cell (its cell c sits at square pixel c * side / wt)
        xs = (torch.arange(hw, dtype=torch.float32) * (w / hw) + px) * wt / side
        ys = (torch.arange(hh, dtype=torch.float32) * (h / hh) + py) * ht / side
        gx = 2 * xs / (wt - 1) - 1
        gy = 2 * ys / (ht - 1) - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)  # (hh, hw, 2) as (x, y)
        grid = grid.unsqueeze(0).expand(heat.shape[0], hh, hw, 2)
        return F.grid_sample(heat, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

    def step_loss(self, model, batch):
        """The heatmap head's loss with the soft term: ``(1 - W) * hard + W * soft``, one forward pass."""
        from edgepose.train.losses import heatmap_mse

        images, heatmaps, weight = batch
        pred = model(images)
        hard = heatmap_mse(pred, heatmaps, weight)
        soft_target = self.targets(images)
        soft = heatmap_mse(pred, soft_target, torch.ones(soft_target.shape[:2]))
        loss = (1 - self.weight) * hard + self.weight * soft
        return loss, {"mse": float(hard.detach()), "soft": float(soft.detach())}
