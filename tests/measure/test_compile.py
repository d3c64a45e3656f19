"""torch.compile as the measurement runs it: inference freezes the weights and fuses conv + ReLU."""

import torch
from torch import nn

from unet_bench.measure.steps import COMPILE_OPTIONS, compile_model


def test_compiled_inference_is_frozen_fused_and_exact():
    assert COMPILE_OPTIONS["infer"] == {"freezing": True}
    model = nn.Sequential(nn.Conv2d(4, 8, 3), nn.ReLU(inplace=True), nn.Conv2d(8, 8, 3), nn.ReLU()).eval()
    x = torch.randn(1, 4, 16, 16)
    compiled = compile_model(model, "infer")
    with torch.inference_mode():
        expected = model(x)
        compiled(x)
        with torch.profiler.profile() as profile:
            out = compiled(x)
    ops = {event.key for event in profile.key_averages()}
    if torch.backends.mkldnn.is_available():  # oneDNN builds run the frozen convs with the ReLU fused in
        assert "mkldnn::_convolution_pointwise" in ops and "aten::relu" not in ops
    torch.testing.assert_close(out, expected)
