//! `--plot curves.png|svg`: loss and accuracy per epoch (training and validation), drawn with
//! plotters and a bundled font (DejaVu Sans, `assets/fonts`), so no system font library is needed.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::training::history::History;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, plotters::coord::Shift>, h: &History) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the plot: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(300);
    let epochs = h.epochs.len().max(1) as f64;
    let series = |f: &dyn Fn(&crate::training::history::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        h.epochs.iter().filter_map(|e| f(e).map(|v| (e.epoch as f64 + 1.0, v))).collect()
    };
    for (area, title, train, val) in [
        (&top, "loss", series(&|e| Some(e.loss)), series(&|e| e.val_loss)),
        (&bottom, "accuracy", series(&|e| Some(e.accuracy)), series(&|e| e.val_accuracy)),
    ] {
        let max = train.iter().chain(&val).map(|p| p.1).fold(f64::MIN, f64::max).max(1e-9);
        let min = train.iter().chain(&val).map(|p| p.1).fold(f64::MAX, f64::min).min(max);
        let pad = ((max - min) * 0.1).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{title} per epoch"), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(1.0..epochs.max(2.0), (min - pad)..(max + pad))
            .map_err(err)?;
        chart.configure_mesh().x_desc("epoch").label_style(("sans-serif", 12)).draw().map_err(err)?;
        chart
            .draw_series(LineSeries::new(train, &BLUE))
            .map_err(err)?
            .label("training")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
        if !val.is_empty() {
            chart
                .draw_series(LineSeries::new(val, &RED))
                .map_err(err)?
                .label("validation")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Checks that `path` names a kind of file [`plot`] draws (before any training).
pub fn check_path(path: &Path) -> Result<()> {
    if !matches!(path.extension().and_then(|e| e.to_str()), Some("png" | "svg" | "PNG" | "SVG")) {
        bail!("--plot {}: the file must end in .png or .svg", path.display());
    }
    Ok(())
}

/// Draws the history's epochs into `path` (PNG or SVG by extension), atomically.
pub fn plot(history: &History, path: &Path) -> Result<()> {
    let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".distk-plot-")
        .suffix(&format!(".{ext}"))
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a file in `{}`", dir.display()))?;
    match ext.as_str() {
        "png" => draw(BitMapBackend::new(tmp.path(), (800, 600)).into_drawing_area(), history)?,
        "svg" => draw(SVGBackend::new(tmp.path(), (800, 600)).into_drawing_area(), history)?,
        _ => bail!("--plot {}: the file must end in .png or .svg", path.display()),
    }
    crate::data::atomic::make_readable(tmp.path());
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}
