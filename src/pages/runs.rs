//! `/runs`: every run of every model in one table. Sort by a column (`?sort=&dir=`), filter
//! by text (`?q=`), tick runs and compare them — all of it by links and forms, so the page
//! works without JavaScript. Once hydrated the filter applies as you type, the rows refresh
//! every few seconds, and the keyboard drives it: ↑/↓ move between runs, space ticks,
//! `c` compares, `/` goes to the filter.

use crate::analysis::format::{duration, path_segment, short_time, thousands};
use crate::analysis::runs_table::{matches, sort, SortBy};
use crate::api::get_runs;
use crate::components::cards::{token_count, TOKENS_ESTIMATED};
use crate::model::{RunRow, MAX_COMPARED};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// How often the table reads the runs again once hydrated.
#[cfg(feature = "hydrate")]
const REFRESH_MS: u64 = 5_000;

#[component]
pub fn RunsPage() -> impl IntoView {
    let query = use_query_map();
    let sort_by = move || {
        query
            .read()
            .get("sort")
            .and_then(|s| SortBy::parse(&s))
            .unwrap_or_default()
    };
    let descending = move || match query.read().get("dir").as_deref() {
        Some("asc") => false,
        Some("desc") => true,
        _ => sort_by().descending_first(),
    };
    let filter = RwSignal::new(query.read_untracked().get("q").unwrap_or_default());
    let ticked = RwSignal::new(Vec::<String>::new());
    let refresh = RwSignal::new(0_u64);
    let data: Resource<_, crate::api::Json> =
        Resource::new_with_options(move || refresh.get(), |_| get_runs(), false);
    #[cfg(feature = "hydrate")]
    {
        if let Ok(handle) = set_interval_with_handle(
            move || refresh.update(|n| *n += 1),
            std::time::Duration::from_millis(REFRESH_MS),
        ) {
            on_cleanup(move || handle.clear());
        }
        keyboard(ticked, filter);
        keep_focus(move || data.track());
    }

    let rows = move || {
        data.get().map(|answer| {
            answer.map(|mut rows: Vec<RunRow>| {
                let text = filter.get();
                rows.retain(|r| matches(r, &text));
                sort(&mut rows, sort_by(), descending());
                rows
            })
        })
    };
    let heading = move |column: SortBy| {
        let active = sort_by() == column;
        let next_desc = if active {
            !descending()
        } else {
            column.descending_first()
        };
        let href = format!(
            "/runs?sort={}&dir={}&q={}",
            column.key(),
            if next_desc { "desc" } else { "asc" },
            path_segment(&filter.get())
        );
        let arrow = match (active, descending()) {
            (false, _) => "",
            (true, true) => " ↓",
            (true, false) => " ↑",
        };
        view! {
            <th aria-sort=move || match (active, descending()) {
                (false, _) => "none",
                (true, true) => "descending",
                (true, false) => "ascending",
            }>
                <a href=href>{column.title()}{arrow}</a>
            </th>
        }
    };
    let compare_href = move || {
        let runs = ticked.get().join(",");
        format!("/compare?runs={}", path_segment(&runs))
    };

    view! {
        <div class="app runs-page">
            <header class="header">
                <a class="brand" href="/">"HYDRA"<span class="brand-sub">" training"</span></a>
                <h1 class="page-title">"Runs"</h1>
                <a class="header-link" href="/">"dashboard"</a>
                <crate::components::alerts::AlertBell/>
            </header>
            <main class="content">
                <form class="runs-filter" method="get" action="/runs">
                    <input
                        type="search"
                        id="runs-filter"
                        name="q"
                        placeholder="filter: run, model, state, key=value"
                        value=filter.get_untracked()
                        prop:value=move || filter.get()
                        on:input=move |ev| filter.set(event_target_value(&ev))
                    />
                    <input type="hidden" name="sort" value=move || sort_by().key()/>
                    <button type="submit" class="secondary">"filter"</button>
                    <span class="muted hint">
                        {format!("tick up to {MAX_COMPARED} runs · ↑/↓ move · space ticks · c compares · / filters")}
                    </span>
                </form>
                <form method="get" action="/compare" id="compare-form">
                    <div class="compare-bar">
                        <button type="submit" id="compare-button">
                            {move || match ticked.get().len() {
                                0 => "Compare ticked runs".to_string(),
                                n => format!("Compare {n} runs"),
                            }}
                        </button>
                        <a class="muted" href=compare_href>{move || (!ticked.get().is_empty()).then_some("link to this comparison")}</a>
                    </div>
                    <Transition fallback=|| view! { <p class="muted">"Reading the runs…"</p> }>
                        {move || match rows() {
                            None => None,
                            Some(Err(e)) => Some(view! {
                                <p class="error-message" role="alert">{e.to_string()}</p>
                            }.into_any()),
                            Some(Ok(rows)) if rows.is_empty() => Some(view! {
                                <p class="empty-state">
                                    {if filter.get().is_empty() { "No runs yet." } else { "No run matches the filter." }}
                                </p>
                            }.into_any()),
                            Some(Ok(rows)) => Some({
                                // Runs from a team's PostgreSQL say which machine trained them.
                                let nodes = rows.iter().any(|r| r.node.is_some());
                                view! {
                                <table class="runs-table">
                                    <thead>
                                        <tr>
                                            <th class="tick-column"><span class="sr-only">"compare"</span></th>
                                            {SortBy::ALL.into_iter().map(heading).collect_view()}
                                            {nodes.then(|| view! { <th>"node"</th> })}
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {rows.into_iter().map(|r| view! { <RunLine row=r ticked nodes/> }).collect_view()}
                                    </tbody>
                                </table>
                                }.into_any()
                            }),
                        }}
                    </Transition>
                </form>
            </main>
        </div>
    }
}

#[component]
fn RunLine(row: RunRow, ticked: RwSignal<Vec<String>>, nodes: bool) -> impl IntoView {
    let id = row.run_id.clone();
    let is_ticked = {
        let id = id.clone();
        move || ticked.with(|t| t.contains(&id))
    };
    let toggle = {
        let id = id.clone();
        move |ev: leptos::ev::Event| {
            let on = event_target_checked(&ev);
            ticked.update(|t| {
                t.retain(|x| x != &id);
                if on && t.len() < MAX_COMPARED {
                    t.push(id.clone());
                }
            });
        }
    };
    let state = row.state.map(|s| s.word()).unwrap_or("");
    let step = match (row.step, row.max_steps) {
        (Some(s), Some(m)) => format!("{} / {}", thousands(s), thousands(m)),
        (Some(s), None) => thousands(s),
        _ => "—".into(),
    };
    let seen = row
        .last_seen_ago
        .map(|s| format!("{} ago", duration(s)))
        .unwrap_or_else(|| "—".into());
    let best = match (row.best_loss, row.best_loss_step) {
        (Some(l), Some(s)) => format!("{l:.4} @ {}", thousands(s)),
        (Some(l), None) => format!("{l:.4}"),
        _ => "—".into(),
    };
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    let tokens = or_dash(row.tokens.map(|t| token_count(t, row.tokens_estimated)));
    view! {
        <tr data-run=id.clone()>
            <td class="tick-column">
                <input
                    type="checkbox"
                    class="run-tick"
                    name="runs"
                    value=id.clone()
                    aria-label=format!("compare {id}")
                    prop:checked=is_ticked
                    on:change=toggle
                />
            </td>
            <td class="run-id"><a href=format!("/run/{}", path_segment(&id))>{id.clone()}</a></td>
            <td>{row.model_id.clone()}</td>
            <td><span class=format!("badge state-{state}")>{state}</span></td>
            <td class="num">{step}</td>
            <td class="num" title=row.last_seen.clone().unwrap_or_default()>{seen}</td>
            <td class="num">{best}</td>
            <td class="num">{or_dash(row.eval_loss.map(|l| format!("{l:.4}")))}</td>
            <td class="num" title=row.tokens_estimated.then_some(TOKENS_ESTIMATED)>
                {tokens}
            </td>
            <td class="num">{or_dash(row.tokens_per_sec.map(|t| format!("{t:.0}")))}</td>
            <td>{or_dash(row.started.as_deref().map(short_time))}</td>
            <td class="num">{or_dash(row.duration.map(duration))}</td>
            {nodes.then(|| view! { <td class="node">{or_dash(row.node.clone())}</td> })}
        </tr>
    }
}

/// The rows are drawn anew on every refresh, so the tick box that had the focus would lose
/// it: it gets it back (unless the person moved on to something else meanwhile).
#[cfg(feature = "hydrate")]
fn keep_focus(rows_changed: impl Fn() + 'static) {
    use wasm_bindgen::JsCast;
    let focused = StoredValue::new(None::<String>);
    let handle = window_event_listener(leptos::ev::focusin, move |ev| {
        let tick = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            .filter(|input| input.class_name() == "run-tick");
        focused.set_value(tick.map(|input| input.value()));
    });
    on_cleanup(move || handle.remove());
    Effect::new(move |_| {
        rows_changed();
        // After the new rows are in the document.
        request_animation_frame(move || {
            let Some(id) = focused.get_value() else {
                return;
            };
            let document = document();
            if document
                .active_element()
                .is_some_and(|el| el.tag_name() != "BODY")
            {
                return;
            }
            let Ok(list) = document.query_selector_all("input.run-tick") else {
                return;
            };
            let found = (0..list.length())
                .filter_map(|i| list.item(i)?.dyn_into::<web_sys::HtmlInputElement>().ok())
                .find(|input| input.value() == id);
            if let Some(input) = found {
                let _ = input.focus();
            }
        });
    });
}

/// ↑/↓ move between the runs' tick boxes, `c` compares the ticked runs, `/` focuses the
/// filter. Space ticks the focused box as browsers do.
#[cfg(feature = "hydrate")]
fn keyboard(ticked: RwSignal<Vec<String>>, _filter: RwSignal<String>) {
    use wasm_bindgen::JsCast;
    let navigate = leptos_router::hooks::use_navigate();
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        let document = document();
        let focused = document.active_element();
        let in_text = focused.as_ref().is_some_and(|el| {
            let tag = el.tag_name();
            (tag == "INPUT" && el.get_attribute("type").as_deref() != Some("checkbox"))
                || tag == "SELECT"
                || tag == "TEXTAREA"
        });
        if in_text || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        let boxes = || -> Vec<web_sys::HtmlElement> {
            let Ok(list) = document.query_selector_all("input.run-tick") else {
                return Vec::new();
            };
            (0..list.length())
                .filter_map(|i| list.item(i)?.dyn_into::<web_sys::HtmlElement>().ok())
                .collect()
        };
        match ev.key().as_str() {
            key @ ("ArrowDown" | "ArrowUp") => {
                let boxes = boxes();
                let at = boxes
                    .iter()
                    .position(|b| focused.as_ref().is_some_and(|f| f.is_same_node(Some(b))));
                let next = match (at, key) {
                    (None, _) => Some(0),
                    (Some(i), "ArrowDown") => Some((i + 1).min(boxes.len().saturating_sub(1))),
                    (Some(i), _) => Some(i.saturating_sub(1)),
                };
                if let Some(b) = next.and_then(|i| boxes.get(i)) {
                    ev.prevent_default();
                    let _ = b.focus();
                }
            }
            "c" if !ticked.with_untracked(Vec::is_empty) => {
                let runs = ticked.get_untracked().join(",");
                navigate(
                    &format!("/compare?runs={}", path_segment(&runs)),
                    Default::default(),
                );
            }
            "/" => {
                if let Some(input) = document
                    .get_element_by_id("runs-filter")
                    .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    ev.prevent_default();
                    let _ = input.focus();
                }
            }
            _ => {}
        }
    });
    on_cleanup(move || handle.remove());
}
