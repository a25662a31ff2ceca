//! Parts of the dashboard page. Each renders on the server and hydrates in the browser.

pub mod cards;
pub mod chart;
pub mod header;
pub mod live;
pub mod panels;
pub mod share;
pub mod sidebar;
pub mod steps_table;
