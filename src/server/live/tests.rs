use super::*;
use crate::model::Step;
use futures::channel::mpsc;

/// Catch-up pages given up front.
struct Pages(std::vec::IntoIter<(Utf8Bytes, Marks)>);

impl CatchUp for Pages {
    async fn next_page(&mut self) -> Result<Option<(Utf8Bytes, Marks)>, AppError> {
        Ok(self.0.next())
    }
}

fn reach(steps: i64) -> Reach {
    Reach {
        steps,
        ..Default::default()
    }
}

fn marks(steps: i64) -> Marks {
    Marks(vec![reach(steps)])
}

/// Steps `rowids` with the step number equal to the rowid.
fn rows(rowids: std::ops::RangeInclusive<i64>) -> LiveRows {
    LiveRows {
        steps: rowids
            .map(|id| {
                (
                    id,
                    Step {
                        step: id,
                        ..Default::default()
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

fn batch(from: i64, to: i64) -> Arc<Event> {
    let rows = rows(from + 1..=to);
    let text = update_text(&rows, Some(to));
    Arc::new(Event::Rows {
        from: reach(from),
        to: reach(to),
        rows,
        text,
    })
}

/// The steps of each `update` sent, and the close code if any.
fn read(sent: Vec<Outgoing>) -> (Vec<Vec<i64>>, Vec<String>, Option<u16>) {
    let (mut updates, mut others, mut close) = (Vec::new(), Vec::new(), None);
    for out in sent {
        match out {
            Outgoing::Text(t) => match serde_json::from_str::<LiveMessage>(t.as_str()).unwrap() {
                LiveMessage::Update { steps, .. } => {
                    updates.push(steps.iter().map(|s| s.step).collect())
                }
                LiveMessage::Heartbeat { .. } => others.push("heartbeat".into()),
                LiveMessage::Run { .. } => others.push("run".into()),
                LiveMessage::Evals { .. } => others.push("evals".into()),
                LiveMessage::Error { error } => others.push(error),
                LiveMessage::Alert { .. } => others.push("alert".into()),
            },
            Outgoing::Close(code, _) => close = Some(code),
        }
    }
    (updates, others, close)
}

struct Harness {
    events: broadcast::Sender<Arc<Event>>,
    closing: watch::Sender<bool>,
    client: mpsc::UnboundedSender<Incoming>,
    sent: mpsc::UnboundedReceiver<Outgoing>,
    task: tokio::task::JoinHandle<()>,
}

/// A follower whose catch-up read steps 1..=`caught_up` at marks `caught_up`.
fn start(caught_up: i64) -> Harness {
    let (events, rx) = broadcast::channel(4);
    let (_step_tx, step_rx) = watch::channel(Some(caught_up));
    let (closing, closing_rx) = watch::channel(false);
    let (client, incoming) = mpsc::unbounded();
    let (sink, sent) = mpsc::unbounded();
    let page = rows(1..=caught_up);
    let pages = Pages(vec![(update_text(&page, Some(caught_up)), marks(caught_up))].into_iter());
    let sub = Subscription {
        events: rx,
        last_step: step_rx,
        closing: closing_rx,
    };
    let task = tokio::spawn(follow(sink, incoming, pages, sub));
    Harness {
        events,
        closing,
        client,
        sent,
        task,
    }
}

async fn drain(sent: &mut mpsc::UnboundedReceiver<Outgoing>) -> Vec<Outgoing> {
    tokio::task::yield_now().await;
    let mut out = Vec::new();
    while let Ok(o) = sent.try_recv() {
        out.push(o);
    }
    out
}

#[tokio::test]
async fn a_follower_gets_every_step_once_across_catch_up_and_broadcast() {
    let mut h = start(5);
    // Read by the watcher before the follower's catch-up, partly inside it, and after.
    h.events.send(batch(0, 3)).unwrap();
    h.events.send(batch(3, 7)).unwrap();
    h.events.send(batch(7, 9)).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (updates, others, close) = read(drain(&mut h.sent).await);
    assert_eq!(updates, vec![vec![1, 2, 3, 4, 5], vec![6, 7], vec![8, 9]]);
    assert!(others.is_empty() && close.is_none());
    h.client.unbounded_send(Incoming::Close).unwrap();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn silence_brings_a_heartbeat_and_garbage_from_the_client_is_ignored() {
    let mut h = start(2);
    h.client.unbounded_send(Incoming::Frame).unwrap();
    tokio::time::sleep(HEARTBEAT - Duration::from_secs(1)).await;
    let (_, others, _) = read(drain(&mut h.sent).await);
    assert!(others.is_empty(), "no heartbeat before {HEARTBEAT:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, others, close) = read(drain(&mut h.sent).await);
    assert_eq!(others, vec!["heartbeat"]);
    assert!(close.is_none());
    drop(h.client);
    h.task.await.unwrap();
}

#[tokio::test]
async fn a_follower_the_ring_laps_is_closed_with_the_resync_code() {
    let mut h = start(0);
    tokio::task::yield_now().await;
    // Four slots: the sixth event laps a follower that has not been scheduled since.
    for i in 0..6 {
        h.events.send(batch(i, i + 1)).unwrap();
    }
    h.task.await.unwrap();
    let (_, _, close) = read(drain(&mut h.sent).await);
    assert_eq!(close, Some(CLOSE_LAGGED));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_dropped_not_buffered_for() {
    let (events, rx) = broadcast::channel(64);
    let (_step_tx, step_rx) = watch::channel(None);
    let (_client, incoming) = mpsc::unbounded::<Incoming>();
    // A sink with room for one message, never read.
    let (sink, _never_read) = mpsc::channel::<Outgoing>(0);
    let (_closing, closing) = watch::channel(false);
    let sub = Subscription {
        events: rx,
        last_step: step_rx,
        closing,
    };
    let task = tokio::spawn(follow(sink, incoming, Pages(Vec::new().into_iter()), sub));
    for i in 0..10 {
        let _ = events.send(batch(i, i + 1));
    }
    tokio::time::sleep(SEND_TIMEOUT * 2).await;
    assert!(
        task.is_finished(),
        "the follower gave up on the stalled client"
    );
}

#[tokio::test]
async fn shutting_down_closes_every_follower_with_going_away() {
    let mut h = start(1);
    tokio::task::yield_now().await;
    h.closing.send_replace(true);
    h.task.await.unwrap();
    let (updates, _, close) = read(drain(&mut h.sent).await);
    assert_eq!(updates, vec![vec![1]], "the catch-up came first");
    assert_eq!(close, Some(CLOSE_GOING_AWAY));
}

#[test]
fn only_rows_above_the_catch_up_are_forwarded() {
    let r = rows(1..=6);
    let rest = r.after(&reach(4));
    assert_eq!(
        rest.steps.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![5, 6]
    );
    assert!(reach(3).within(&reach(4)) && !reach(5).within(&reach(4)));
}
