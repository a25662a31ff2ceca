//! Charts as PNG, for link previews and exports: the same `draw` functions onto plotters'
//! bitmap backend, encoded with the `png` crate.
//!
//! A bitmap needs glyphs, and a fresh machine has no fonts, so one is baked in: DejaVu Sans
//! cut down to the characters our labels use (`assets/fonts/`, 31 KB), made with
//!
//! ```text
//! pyftsubset DejaVuSans.ttf --unicodes="U+0020-007E,U+00A0-00FF,U+2010-2027,U+2030-203A,\
//!   U+2190-2193,U+2212,U+2248,U+2264,U+2265,U+221E,U+25A0-25CF,U+03B1-03C9,U+00D7" \
//!   --layout-features=kern --no-hinting --output-file=DejaVuSans-subset.ttf
//! ```
//!
//! With it registered, the SVG the server draws is laid out with the same real glyph widths.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::sync::Once;

const SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");

/// Makes the baked-in font the one every chart's text uses on the server. Idempotent;
/// called before any server-side drawing.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font("sans-serif", style, SANS).is_err() {
                tracing::error!("the baked-in chart font does not parse; charts lose their text");
            }
        }
    });
}

/// What drawing into a bitmap returns.
pub type BitmapResult =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

/// Draws with `draw` into a `width` × `height` PNG.
pub fn to_png(
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> BitmapResult,
) -> Result<Vec<u8>, String> {
    register_fonts();
    let mut rgb = vec![0_u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw(&root).map_err(|e| format!("drawing the chart failed: {e}"))?;
        root.present()
            .map_err(|e| format!("drawing the chart failed: {e}"))?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&rgb))
        .map_err(|e| format!("encoding the PNG failed: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_becomes_a_png_of_its_size_with_text_drawn() {
        let bytes = to_png(300, 120, |root| {
            root.fill(&WHITE)?;
            root.draw(&Text::new(
                "loss 2.31 — step 1,000",
                (10, 50),
                ("sans-serif", 20).into_font().color(&BLACK),
            ))?;
            Ok(())
        })
        .unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (300, 120));
        let dark = pixels.chunks(3).filter(|p| p[0] < 100).count();
        assert!(dark > 200, "the text was drawn ({dark} dark pixels)");
    }
}
