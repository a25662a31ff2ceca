//! Colours and sizes of every chart, in one place: the seed's dark theme.

use plotters::style::{FontDesc, FontFamily, FontStyle, RGBColor};

pub struct Theme {
    pub background: RGBColor,
    pub grid: RGBColor,
    pub axis: RGBColor,
    pub text: RGBColor,
    pub muted: RGBColor,
    pub loss: RGBColor,
    pub ema: [RGBColor; 3],
    pub spike: RGBColor,
    pub diverged: RGBColor,
    pub lr: RGBColor,
    pub grad: RGBColor,
    pub threshold: RGBColor,
}

pub const DARK: Theme = Theme {
    background: RGBColor(0x16, 0x1b, 0x22),
    grid: RGBColor(0x26, 0x2c, 0x36),
    axis: RGBColor(0x48, 0x4f, 0x58),
    text: RGBColor(0xc9, 0xd1, 0xd9),
    muted: RGBColor(0x8b, 0x94, 0x9e),
    loss: RGBColor(0xef, 0x44, 0x44),
    ema: [
        RGBColor(0xf9, 0x73, 0x16),
        RGBColor(0xea, 0xb3, 0x08),
        RGBColor(0x22, 0xc5, 0x5e),
    ],
    spike: RGBColor(0xff, 0xff, 0xff),
    diverged: RGBColor(0xf8, 0x51, 0x49),
    lr: RGBColor(0x3b, 0x82, 0xf6),
    grad: RGBColor(0xa8, 0x55, 0xf7),
    threshold: RGBColor(0xea, 0xb3, 0x08),
};

impl Theme {
    pub fn font(&self, size: u32) -> FontDesc<'static> {
        FontDesc::new(FontFamily::SansSerif, size as f64, FontStyle::Normal)
    }
}
