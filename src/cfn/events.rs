//! The event stream: reads `DescribeStackEvents` of each followed stack from the operation's
//! start, never returns an event twice, and returns new events oldest first.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::StackEvent as SdkEvent;

use super::tree::StackEvent;
use crate::error::AwsContext;

impl From<&SdkEvent> for StackEvent {
    fn from(e: &SdkEvent) -> Self {
        StackEvent {
            id: e.event_id().unwrap_or_default().to_string(),
            stack_id: e.stack_id().unwrap_or_default().to_string(),
            stack_name: e.stack_name().unwrap_or_default().to_string(),
            logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
            physical_id: e.physical_resource_id().map(str::to_string),
            resource_type: e.resource_type().unwrap_or_default().to_string(),
            status: e
                .resource_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            reason: e.resource_status_reason().map(str::to_string),
            timestamp_ms: e
                .timestamp()
                .map(|t| t.to_millis().unwrap_or(0))
                .unwrap_or(0),
        }
    }
}

#[derive(Debug, Default)]
struct Cursor {
    seen: HashSet<String>,
    /// Events older than this (server time, ms) belong to earlier operations.
    since_ms: Option<i64>,
}

/// Reads new events per stack. One `DescribeStackEvents` page per stack and poll in the usual
/// case; more pages only while every event on a page is new.
#[derive(Debug)]
pub struct EventPoller {
    cfn: Client,
    cursors: HashMap<String, Cursor>,
    /// API requests made, for the benchmark and tests.
    pub requests: usize,
}

impl EventPoller {
    pub fn new(cfn: Client) -> Self {
        EventPoller {
            cfn,
            cursors: HashMap::new(),
            requests: 0,
        }
    }

    /// Starts reading `stack` at events newer than `since_ms`, skipping `seen` event ids.
    pub fn start(&mut self, stack: &str, since_ms: Option<i64>, seen: Option<String>) {
        let cursor = self.cursors.entry(stack.to_string()).or_default();
        cursor.since_ms = since_ms;
        cursor.seen.extend(seen);
    }

    /// The newest event of a stack: (event id, timestamp). Marks where an operation starts.
    pub async fn latest(&mut self, stack: &str) -> Result<Option<(String, i64)>> {
        self.requests += 1;
        let out = self
            .cfn
            .describe_stack_events()
            .stack_name(stack)
            .send()
            .await
            .aws_context(format_args!("reading the events of stack {stack}"))?;
        Ok(out.stack_events().first().map(|e| {
            let e = StackEvent::from(e);
            (e.id, e.timestamp_ms)
        }))
    }

    /// New events of `stack`, oldest first.
    pub async fn poll(&mut self, stack: &str) -> Result<Vec<StackEvent>> {
        let mut fresh = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.requests += 1;
            let out = self
                .cfn
                .describe_stack_events()
                .stack_name(stack)
                .set_next_token(token.take())
                .send()
                .await
                .aws_context(format_args!("reading the events of stack {stack}"))?;
            let cursor = self.cursors.entry(stack.to_string()).or_default();
            let mut reached_known = false;
            for e in out.stack_events() {
                let e = StackEvent::from(e);
                let old = cursor.since_ms.is_some_and(|s| e.timestamp_ms < s);
                if old || cursor.seen.contains(&e.id) {
                    reached_known = true;
                    break;
                }
                fresh.push(e);
            }
            match out.next_token() {
                Some(t) if !reached_known => token = Some(t.to_string()),
                _ => break,
            }
        }
        let cursor = self.cursors.entry(stack.to_string()).or_default();
        cursor.seen.extend(fresh.iter().map(|e| e.id.clone()));
        fresh.reverse();
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
    use aws_sdk_cloudformation::types::{ResourceStatus, StackEvent as SdkEvent};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::DateTime;

    use super::*;

    fn sdk_ev(id: &str, secs: i64, status: ResourceStatus) -> SdkEvent {
        SdkEvent::builder()
            .event_id(id)
            .stack_id("arn:bbb")
            .stack_name("bbb")
            .logical_resource_id("Vpc")
            .resource_type("AWS::EC2::VPC")
            .resource_status(status)
            .timestamp(DateTime::from_secs(secs))
            .build()
    }

    fn page(events: Vec<SdkEvent>, next: Option<&str>) -> DescribeStackEventsOutput {
        DescribeStackEventsOutput::builder()
            .set_stack_events(Some(events))
            .set_next_token(next.map(str::to_string))
            .build()
    }

    #[tokio::test]
    async fn never_repeats_and_stops_at_known_events() {
        let first = mock!(Client::describe_stack_events).then_output(|| {
            page(
                vec![
                    sdk_ev("e3", 30, ResourceStatus::CreateComplete),
                    sdk_ev("e2", 20, ResourceStatus::CreateInProgress),
                ],
                Some("t1"),
            )
        });
        let second = mock!(Client::describe_stack_events)
            .match_requests(|r| r.next_token() == Some("t1"))
            .then_output(|| page(vec![sdk_ev("e1", 5, ResourceStatus::CreateComplete)], None));
        // newest first again; e3 is known so the page stops there
        let third = mock!(Client::describe_stack_events).then_output(|| {
            page(
                vec![
                    sdk_ev("e4", 40, ResourceStatus::DeleteInProgress),
                    sdk_ev("e3", 30, ResourceStatus::CreateComplete),
                ],
                Some("t1"),
            )
        });
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::Sequential,
            [&first, &second, &third]
        );
        let mut poller = EventPoller::new(client);
        poller.start("bbb", Some(10_000), None);
        let got = poller.poll("bbb").await.unwrap();
        // e1 is older than the operation's start: left out
        assert_eq!(
            got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["e2", "e3"]
        );
        let got = poller.poll("bbb").await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["e4"]
        );
        assert_eq!(got[0].status, "DELETE_IN_PROGRESS");
        assert_eq!(poller.requests, 3);
    }

    #[tokio::test]
    async fn throttling_is_retried_by_the_sdk() {
        use aws_sdk_cloudformation::config::retry::RetryConfig;
        use aws_smithy_runtime_api::http::StatusCode;
        let throttled = mock!(Client::describe_stack_events)
            .sequence()
            .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
            .times(2)
            .output(|| page(vec![sdk_ev("e1", 1, ResourceStatus::CreateComplete)], None))
            .build();
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::Sequential,
            [&throttled],
            |c| c.retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
            )
        );
        let mut poller = EventPoller::new(client);
        let got = poller.poll("bbb").await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(throttled.num_calls(), 3);
        let _ = StatusCode::try_from(200).unwrap();
    }
}
