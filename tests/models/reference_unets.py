"""Independent, flat UNets written from the definitions (not from the package's blocks).

`FlatUNet` follows the paper's network layer for layer: named convs, an explicit crop, the encoder map
concatenated first. ``upsample="bilinear"`` and ``merge="add"`` give the bilinear and additive variants
(x2 interpolation + 1x1 conv C→C/2; crop and add the skip). Width is a parameter so tests can run them
small.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FlatUNet(nn.Module):
    def __init__(self, width: int = 64, upsample: str = "transposed", merge: str = "concat") -> None:
        super().__init__()
        w = [width * 2**i for i in range(5)]
        self.upsample, self.merge = upsample, merge
        self.conv1_1, self.conv1_2 = nn.Conv2d(1, w[0], 3), nn.Conv2d(w[0], w[0], 3)
        self.conv2_1, self.conv2_2 = nn.Conv2d(w[0], w[1], 3), nn.Conv2d(w[1], w[1], 3)
        self.conv3_1, self.conv3_2 = nn.Conv2d(w[1], w[2], 3), nn.Conv2d(w[2], w[2], 3)
        self.conv4_1, self.conv4_2 = nn.Conv2d(w[2], w[3], 3), nn.Conv2d(w[3], w[3], 3)
        self.conv5_1, self.conv5_2 = nn.Conv2d(w[3], w[4], 3), nn.Conv2d(w[4], w[4], 3)
        dec_in = (lambda c: c) if merge == "concat" else (lambda c: c // 2)
        self.up_conv_1 = self._up(w[4])
        self.conv6_1, self.conv6_2 = nn.Conv2d(dec_in(w[4]), w[3], 3), nn.Conv2d(w[3], w[3], 3)
        self.up_conv_2 = self._up(w[3])
        self.conv7_1, self.conv7_2 = nn.Conv2d(dec_in(w[3]), w[2], 3), nn.Conv2d(w[2], w[2], 3)
        self.up_conv_3 = self._up(w[2])
        self.conv8_1, self.conv8_2 = nn.Conv2d(dec_in(w[2]), w[1], 3), nn.Conv2d(w[1], w[1], 3)
        self.up_conv_4 = self._up(w[1])
        self.conv9_1, self.conv9_2 = nn.Conv2d(dec_in(w[1]), w[0], 3), nn.Conv2d(w[0], w[0], 3)
        self.conv_10 = nn.Conv2d(w[0], 2, 1)

    def _up(self, c: int) -> nn.Module:
        if self.upsample == "transposed":
            return nn.ConvTranspose2d(c, c // 2, 2, stride=2)
        return nn.Conv2d(c, c // 2, 1)  # applied after x2 bilinear interpolation

    def _upsample(self, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.upsample == "transposed":
            return conv(x)
        return conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))

    @staticmethod
    def crop(t: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        d = (t.shape[2] - target.shape[2]) // 2
        e = (t.shape[3] - target.shape[3]) // 2
        return t[:, :, d : t.shape[2] - d, e : t.shape[3] - e]

    def _join(self, enc: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        enc = self.crop(enc, up)
        return torch.cat([enc, up], dim=1) if self.merge == "concat" else enc + up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.relu
        x2 = r(self.conv1_2(r(self.conv1_1(x))))
        x4 = r(self.conv2_2(r(self.conv2_1(F.max_pool2d(x2, 2)))))
        x6 = r(self.conv3_2(r(self.conv3_1(F.max_pool2d(x4, 2)))))
        x8 = r(self.conv4_2(r(self.conv4_1(F.max_pool2d(x6, 2)))))
        x10 = r(self.conv5_2(r(self.conv5_1(F.max_pool2d(x8, 2)))))
        y = self._join(x8, self._upsample(self.up_conv_1, x10))
        y = r(self.conv6_2(r(self.conv6_1(y))))
        y = self._join(x6, self._upsample(self.up_conv_2, y))
        y = r(self.conv7_2(r(self.conv7_1(y))))
        y = self._join(x4, self._upsample(self.up_conv_3, y))
        y = r(self.conv8_2(r(self.conv8_1(y))))
        y = self._join(x2, self._upsample(self.up_conv_4, y))
        y = r(self.conv9_2(r(self.conv9_1(y))))
        return self.conv_10(y)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """Conv and transposed-conv layers in registration order."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy weights layer by layer; fails if the two networks' layers do not line up in shape."""
    src_layers, dst_layers = weight_layers(src), weight_layers(dst)
    assert len(src_layers) == len(dst_layers)
    with torch.no_grad():
        for a, b in zip(src_layers, dst_layers, strict=True):
            assert a.weight.shape == b.weight.shape, (a, b)
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
