//! Parts of the dashboard page. Each renders on the server and hydrates in the browser.

pub mod alerts;
pub mod cards;
pub mod chart;
pub mod header;
pub mod live;
pub mod panels;
pub mod share;
pub mod sidebar;
pub mod steps_table;

/// In the page's context when it is rendered as a file that opens on its own (`hydra-dashboard
/// snapshot`): no link may lead back to a server that is not there.
#[derive(Clone, Copy, Debug)]
pub struct Standalone;

/// In the page's context when it is a frozen snapshot (`/s/{id}` or a file): nothing live.
#[derive(Clone, Copy, Debug)]
pub struct Frozen;

/// Whether the page is frozen: a shared snapshot or a standalone file.
pub fn frozen() -> bool {
    leptos::prelude::use_context::<Frozen>().is_some() || standalone()
}

/// The browser's clock, in milliseconds since the epoch (0 on the server, which never waits
/// on it).
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    return web_sys::js_sys::Date::now();
    #[cfg(not(feature = "hydrate"))]
    0.0
}

/// Writes `name=value` into the address bar's query, in place of any `name` there, without
/// reloading or adding a history entry: the address stays a link to what is shown.
/// `value` is put in as given (numbers, words: nothing to escape). Does nothing on the
/// server or in a standalone file.
pub fn keep_in_address(name: &str, value: &str) {
    #[cfg(feature = "hydrate")]
    if !standalone() {
        let Some(window) = web_sys::window() else {
            return;
        };
        let location = window.location();
        let (Ok(path), Ok(search), Ok(hash)) =
            (location.pathname(), location.search(), location.hash())
        else {
            return;
        };
        let url = format!("{path}{}{hash}", with_query(&search, name, value));
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (name, value);
}

/// `search` (`?a=1&b=2`, or empty) with `name=value` in place of every `name`, or added last.
pub fn with_query(search: &str, name: &str, value: &str) -> String {
    let mut pairs: Vec<String> = search
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let ours = |p: &String| p.split('=').next() == Some(name);
    match pairs.iter().position(ours) {
        Some(at) => {
            pairs[at] = format!("{name}={value}");
            let mut seen = false;
            pairs.retain(|p| !ours(p) || !std::mem::replace(&mut seen, true));
        }
        None => pairs.push(format!("{name}={value}")),
    }
    format!("?{}", pairs.join("&"))
}

/// Whether the page is being rendered as a standalone file.
pub fn standalone() -> bool {
    leptos::prelude::use_context::<Standalone>().is_some()
}

#[cfg(test)]
mod tests {
    use super::with_query;

    #[test]
    fn a_value_kept_in_the_address_replaces_its_own_and_leaves_the_rest() {
        assert_eq!(with_query("", "smoothing", "0.6"), "?smoothing=0.6");
        assert_eq!(
            with_query("?runs=a,b&smoothing=0.6&x=step", "smoothing", "0.9"),
            "?runs=a,b&smoothing=0.9&x=step"
        );
        assert_eq!(
            with_query("?smoothing=1&smoothing=2&start=5", "smoothing", "0"),
            "?smoothing=0&start=5"
        );
        assert_eq!(
            with_query("?smoothingx=1", "smoothing", "0.5"),
            "?smoothingx=1&smoothing=0.5"
        );
    }
}
