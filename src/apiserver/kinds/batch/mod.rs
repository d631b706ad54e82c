//! The batch group (`/apis/batch/v1`): Jobs and CronJobs. Their controllers are
//! `crate::controller::job`, `crate::controller::cronjob` and
//! `crate::controller::ttlafterfinished`.

pub mod cron;
pub mod cronjob;
pub mod job;

use std::sync::Arc;

use super::Kind;

/// The kinds of batch/v1, in discovery order (upstream lists cronjobs first).
pub fn kinds() -> Vec<Kind> {
    vec![
        Arc::new(cronjob::CronJobs::new()),
        Arc::new(job::Jobs::new()),
    ]
}
