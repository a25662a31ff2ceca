//! Colours and sizes of every chart, in one place: the seed's dark theme.

use plotters::style::{FontDesc, FontFamily, FontStyle, RGBColor};

pub struct Theme {
    pub background: RGBColor,
    pub grid: RGBColor,
    pub axis: RGBColor,
    pub text: RGBColor,
    pub muted: RGBColor,
    pub loss: RGBColor,
    /// The loss smoothed by the slider: the loss's hue, lighter, over the faded raw loss.
    pub smoothed: RGBColor,
    pub ema: [RGBColor; 3],
    pub spike: RGBColor,
    pub diverged: RGBColor,
    pub lr: RGBColor,
    pub grad: RGBColor,
    pub threshold: RGBColor,
    /// The adaptive-LR controller's short and long loss EMAs: apart from the loss chart's
    /// EMA colours, because they are the controller's own.
    pub controller: [RGBColor; 2],
    /// Eval loss: apart from the training loss and its EMAs.
    pub eval: RGBColor,
    /// Alerts' markers: apart from every line they sit on.
    pub alert: RGBColor,
}

pub const DARK: Theme = Theme {
    background: RGBColor(0x16, 0x1b, 0x22),
    grid: RGBColor(0x26, 0x2c, 0x36),
    axis: RGBColor(0x48, 0x4f, 0x58),
    text: RGBColor(0xc9, 0xd1, 0xd9),
    muted: RGBColor(0x8b, 0x94, 0x9e),
    loss: RGBColor(0xef, 0x44, 0x44),
    smoothed: RGBColor(0xfc, 0xa5, 0xa5),
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
    controller: [RGBColor(0x06, 0xb6, 0xd4), RGBColor(0xec, 0x48, 0x99)],
    eval: RGBColor(0x7d, 0xd3, 0xfc),
    alert: RGBColor(0xf0, 0xab, 0xfc),
};

/// Distinct colours for layers and experts, in order; they repeat after twelve.
pub const PALETTE: [RGBColor; 12] = [
    RGBColor(0x3b, 0x82, 0xf6),
    RGBColor(0xf9, 0x73, 0x16),
    RGBColor(0x22, 0xc5, 0x5e),
    RGBColor(0xa8, 0x55, 0xf7),
    RGBColor(0xea, 0xb3, 0x08),
    RGBColor(0x06, 0xb6, 0xd4),
    RGBColor(0xec, 0x48, 0x99),
    RGBColor(0x84, 0xcc, 0x16),
    RGBColor(0xf4, 0x3f, 0x5e),
    RGBColor(0x8b, 0x5c, 0xf6),
    RGBColor(0x14, 0xb8, 0xa6),
    RGBColor(0xfb, 0xbf, 0x24),
];

/// One colour per compared run: Okabe and Ito's colour-blind-safe set without its black
/// (invisible here), its blue lightened for the dark background, and a light grey. Past
/// eight runs the colours repeat with a dash (`charts::compare::run_dash`).
pub const RUNS: [RGBColor; 8] = [
    RGBColor(0x56, 0xb4, 0xe9), // sky blue
    RGBColor(0xe6, 0x9f, 0x00), // orange
    RGBColor(0x00, 0xb0, 0x80), // bluish green
    RGBColor(0xf0, 0xe4, 0x42), // yellow
    RGBColor(0xcc, 0x79, 0xa7), // reddish purple
    RGBColor(0xe8, 0x6a, 0x1c), // vermillion
    RGBColor(0x4a, 0x8f, 0xe0), // blue
    RGBColor(0xd0, 0xd0, 0xd0), // light grey
];

impl Theme {
    /// `#rrggbb` of the `i`-th layer colour, for keys drawn in HTML.
    pub fn layer_css(&self, i: usize) -> String {
        let RGBColor(r, g, b) = self.layer(i);
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// The colour of the `i`-th layer or expert.
    pub fn layer(&self, i: usize) -> RGBColor {
        PALETTE[i % PALETTE.len()]
    }

    pub fn font(&self, size: u32) -> FontDesc<'static> {
        FontDesc::new(FontFamily::SansSerif, size as f64, FontStyle::Normal)
    }
}
