//! Sharing what is on screen: the header's Share button freezes the view (run, zoom, scale)
//! into a snapshot page and copies its link; each chart's export links download the shown
//! range as CSV at full resolution, or the chart as SVG or PNG.

use crate::analysis::format::path_segment;
use crate::components::chart::SharedView;
use crate::model::ShareRequest;
use leptos::prelude::*;

/// What the Share button has to show after a click.
#[derive(Clone, Debug, PartialEq)]
enum Shared {
    Working,
    Link { url: String, copied: bool },
    Failed(String),
}

/// What the single-run page's Share freezes: the run at the shown zoom and scale.
pub fn run_view(run_id: String) -> Callback<(), ShareRequest> {
    let view = use_context::<SharedView>().unwrap_or_default();
    Callback::new(move |()| {
        let (start_step, end_step) = view.range.get_untracked().unzip();
        ShareRequest {
            run_id: Some(run_id.clone()),
            start_step,
            end_step,
            log_scale: view.log_y.get_untracked(),
            ..ShareRequest::default()
        }
    })
}

/// Freezes the view `request` describes at the moment of the click, and shows (and copies)
/// the link.
#[component]
pub fn ShareButton(#[prop(into)] request: Callback<(), ShareRequest>) -> impl IntoView {
    let state = RwSignal::new(None::<Shared>);
    let share = move |_| {
        let request = request.run(());
        state.set(Some(Shared::Working));
        leptos::task::spawn_local(async move {
            match crate::api::share_view(request).await {
                Ok(link) => {
                    let url = format!("{}{}", origin(), link.url);
                    let copied = copy(&url).await;
                    state.set(Some(Shared::Link { url, copied }));
                }
                Err(e) => state.set(Some(Shared::Failed(match e {
                    ServerFnError::ServerError(m) => m,
                    other => other.to_string(),
                }))),
            }
        });
    };
    let select_all = move |ev: leptos::ev::FocusEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            if let Some(input) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            {
                input.select();
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    view! {
        <div class="share">
            <button
                class="share-button"
                title="freeze this view (runs, zoom, scale) into a page a colleague can open"
                disabled=move || state.get() == Some(Shared::Working)
                on:click=share
            >
                "Share"
            </button>
            {move || match state.get() {
                None => ().into_any(),
                Some(Shared::Working) => view! { <span class="share-note">"freezing…"</span> }.into_any(),
                Some(Shared::Link { url, copied }) => view! {
                    <input class="share-link" readonly prop:value=url.clone() on:focus=select_all aria-label="snapshot link"/>
                    <a class="share-open" href=url target="_blank" rel="noopener">"open"</a>
                    <span class="share-note">{if copied { "link copied" } else { "copy the link" }}</span>
                }
                .into_any(),
                Some(Shared::Failed(message)) => view! {
                    <span class="share-error" role="alert">{message}</span>
                }
                .into_any(),
            }}
        </div>
    }
}

/// `http://host:port` of the page.
fn origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

/// Puts `text` on the clipboard; false where the browser refuses (no permission, or a page
/// not served from loopback or HTTPS).
async fn copy(text: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        let Some(window) = web_sys::window() else {
            return false;
        };
        let promise = window.navigator().clipboard().write_text(text);
        wasm_bindgen_futures::JsFuture::from(promise).await.is_ok()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = text;
        false
    }
}

/// The CSV a chart's data comes from, and the metrics in it.
fn csv_of(chart: &str) -> &'static str {
    match chart {
        "loss" => "steps.csv?metrics=loss_total,loss_ce,loss_aux,loss_ponder,loss_advantage,ema_short,ema_medium,ema_long",
        "lr" => "steps.csv?metrics=lr",
        "grad" => "steps.csv?metrics=grad_norm_pre_clip,grad_norm",
        "gauges" => "steps.csv?metrics=tokens_per_sec,vram_gb",
        "mod" => "mod.csv?",
        "mor" => "mor.csv?",
        _ => "moe.csv?",
    }
}

/// The export URLs of `chart` for the shown range and scale: CSV, SVG, PNG.
pub fn export_urls(run_id: &str, chart: &str, range: Option<(i64, i64)>, log: bool) -> [String; 3] {
    let base = format!("/api/export/{}/", path_segment(run_id));
    let range = range
        .map(|(a, b)| format!("start_step={a}&end_step={b}"))
        .unwrap_or_default();
    let csv = csv_of(chart);
    let sep = if csv.ends_with('?') { "" } else { "&" };
    let csv = match range.is_empty() {
        true => format!("{base}{}", csv.trim_end_matches('?')),
        false => format!("{base}{csv}{sep}{range}"),
    };
    let mut query: Vec<&str> = Vec::new();
    if !range.is_empty() {
        query.push(&range);
    }
    if log {
        query.push("log=1");
    }
    let query = match query.is_empty() {
        true => String::new(),
        false => format!("?{}", query.join("&")),
    };
    [
        csv,
        format!("{base}{chart}.svg{query}"),
        format!("{base}{chart}.png{query}"),
    ]
}

/// A chart's download links, following the shared zoom and scale.
#[component]
pub fn ExportLinks(run_id: String, chart: &'static str) -> impl IntoView {
    if super::standalone() {
        // The exports are the server's; a file opened on its own has none.
        return None;
    }
    let view = use_context::<SharedView>().unwrap_or_default();
    let follows = chart != "gauges";
    let urls = Signal::derive(move || {
        let range = if follows { view.range.get() } else { None };
        export_urls(&run_id, chart, range, follows && view.log_y.get())
    });
    let title = |what: &str| format!("download {what} of the shown range");
    Some(view! {
        <span class="export" data-export=chart>
            <a href=move || urls.get()[0].clone() download title=title("the data as CSV, every logged step")>"CSV"</a>
            <a href=move || urls.get()[1].clone() download title=title("this chart as SVG")>"SVG"</a>
            <a href=move || urls.get()[2].clone() download title=title("this chart as PNG")>"PNG"</a>
        </span>
    })
}

#[cfg(test)]
mod tests {
    use super::export_urls;

    #[test]
    fn export_urls_carry_the_zoom_and_scale() {
        let [csv, svg, png] = export_urls("run/1", "loss", Some((100, 200)), true);
        assert_eq!(
            csv,
            "/api/export/run%2F1/steps.csv?metrics=loss_total,loss_ce,loss_aux,loss_ponder,\
             loss_advantage,ema_short,ema_medium,ema_long&start_step=100&end_step=200"
        );
        assert_eq!(
            svg,
            "/api/export/run%2F1/loss.svg?start_step=100&end_step=200&log=1"
        );
        assert_eq!(
            png,
            "/api/export/run%2F1/loss.png?start_step=100&end_step=200&log=1"
        );
        let [csv, svg, _] = export_urls("r", "mor", None, false);
        assert_eq!(csv, "/api/export/r/mor.csv");
        assert_eq!(svg, "/api/export/r/mor.svg");
        let [csv, _, _] = export_urls("r", "mod", Some((1, 2)), false);
        assert_eq!(csv, "/api/export/r/mod.csv?start_step=1&end_step=2");
    }
}
