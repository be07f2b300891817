def test_panels_are_drawn_at_true_scale_so_the_printed_speed_and_gain_hold():
    """25 mm/s and 10 mm/mV are printed on every panel: at 200 dpi a 10 s strip must span 250 mm = 1,969 px
    and a 12-lead panel must not be shrunk to fit (the old layout drew it at about 20 mm/s)."""
    import numpy as np

    from ecgproto.report.ecgplot import (
        DPI,
        MM_PER_S,
        PULSE_MM,
        ROW_MM,
        TWELVE_LEAD_MM,
        draw_12lead,
        draw_strip,
        stacked_axes,
    )
    fig, axes = stacked_axes([[TWELVE_LEAD_MM, 8], [ROW_MM, 1], [ROW_MM, 1]])
    draw_12lead(axes[0], np.zeros((12, 1000)), "a title\nof two lines")
    draw_strip(axes[1], np.zeros(1000), "a strip")
    fig.set_dpi(DPI)
    fig.canvas.draw()
    px_per_mm = DPI / 25.4
    for ax, height_mm in zip(axes, (TWELVE_LEAD_MM, ROW_MM)):
        box = ax.get_window_extent()
        assert abs(box.width - (PULSE_MM + 10 * MM_PER_S) * px_per_mm) < 2  # 257 mm with the pulse
        assert abs(box.height - height_mm * px_per_mm) < 2
        assert box.width - PULSE_MM * px_per_mm >= 1968  # 250 mm at 200 dpi: 1,968.5 px
