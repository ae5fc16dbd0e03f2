//! The built-in simulator: deterministic outcomes chosen by the recipient address, so delivery
//! statuses, retries, delays and failures can be exercised end to end without a carrier.
//!
//! Phone numbers (SMS, WhatsApp, voice), by their last four digits:
//! - `0000`: refused at once, permanently: "the number is not in service".
//! - `0001`: transient "carrier temporarily unavailable" on the first two attempts, then sent and
//!   delivered.
//! - `0002`: sent, delivered [`DELAY`] later.
//! - `0003`: sent, then failed at once: "the handset is unreachable".
//! - anything else: sent, then delivered at once.
//!
//! Email addresses, by the local part's prefix before `+`: `fail+…@` (permanent "the mailbox
//! does not exist"), `retry+…@` (like `0001`), `delay+…@` (like `0002`), `bounce+…@` (sent, then
//! failed: "the message bounced"); any other address is delivered at once.
//!
//! Calls (see [`call_outcome`]), by the number's last four digits: `0000` busy, `0001` no
//! answer, `0002` voicemail, `0003` failed, `0004` rings until answered or ended through the
//! API; `1xxx` answered with the last digit pressed; anything else answered. Answered calls talk
//! 30 s plus the last two digits.
//!
//! The agent's leg of a click-to-call or callback (see [`agent_answers`]) is answered at once
//! when it rings the agent's app (`client:…`) or an ordinary number; an agent phone number
//! ending `0000`–`0003` is busy, unanswered or failing like a callee's, and one ending `0004`
//! rings until the agent answers through the API (`answerCall`).
//!
//! With several recipients the first one with a special address (in `to`, `cc`, `bcc` order)
//! decides; messages without recipients (chat) are delivered at once. The provider message id
//! is `sim-` and the message id, so a repeated send is the same send.

use chrono::Duration;

use super::{Accepted, Outbound, Provider, Report, SendError, SendFuture};

/// How long after the send a delayed delivery (`0002`, `delay+`) is reported.
pub const DELAY: Duration = Duration::seconds(60);

/// Attempts that fail transiently for `0001` and `retry+` before the send works.
pub const TRANSIENT_FAILURES: i32 = 2;

/// The simulator.
pub struct Simulator;

/// What the simulator does with a recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Refuse,
    Flaky,
    Delay,
    FailAfterSend,
    Deliver,
}

fn behaviour(address: &str) -> Behaviour {
    if let Some((local, _domain)) = address.split_once('@') {
        let prefix = local.split_once('+').map(|(p, _)| p.to_ascii_lowercase());
        return match prefix.as_deref() {
            Some("fail") => Behaviour::Refuse,
            Some("retry") => Behaviour::Flaky,
            Some("delay") => Behaviour::Delay,
            Some("bounce") => Behaviour::FailAfterSend,
            _ => Behaviour::Deliver,
        };
    }
    let digits: String = address.chars().filter(char::is_ascii_digit).collect();
    match digits.get(digits.len().saturating_sub(4)..) {
        Some("0000") => Behaviour::Refuse,
        Some("0001") => Behaviour::Flaky,
        Some("0002") => Behaviour::Delay,
        Some("0003") => Behaviour::FailAfterSend,
        _ => Behaviour::Deliver,
    }
}

/// The outcome of sending `message`.
pub fn outcome(message: &Outbound) -> Result<Accepted, SendError> {
    let email = message.to.iter().any(|a| a.contains('@'));
    let decides = message
        .to
        .iter()
        .chain(&message.cc)
        .chain(&message.bcc)
        .map(|a| behaviour(a))
        .find(|b| *b != Behaviour::Deliver)
        .unwrap_or(Behaviour::Deliver);
    let accepted = |report: Report, after: Duration| Accepted {
        provider_message_id: format!("sim-{}", message.message_id),
        report: Some((report, after)),
    };
    match decides {
        Behaviour::Refuse if email => {
            Err(SendError::Permanent("the mailbox does not exist".into()))
        }
        Behaviour::Refuse => Err(SendError::Permanent("the number is not in service".into())),
        Behaviour::Flaky if message.attempt <= TRANSIENT_FAILURES => Err(SendError::Transient(
            "carrier temporarily unavailable".into(),
        )),
        Behaviour::Delay => Ok(accepted(Report::Delivered, DELAY)),
        Behaviour::FailAfterSend if email => Ok(accepted(
            Report::Failed("the message bounced".into()),
            Duration::zero(),
        )),
        Behaviour::FailAfterSend => Ok(accepted(
            Report::Failed("the handset is unreachable".into()),
            Duration::zero(),
        )),
        Behaviour::Flaky | Behaviour::Deliver => Ok(accepted(Report::Delivered, Duration::zero())),
    }
}

impl Provider for Simulator {
    fn name(&self) -> &'static str {
        "simulator"
    }

    fn send<'a>(
        &'a self,
        message: &'a Outbound,
        _settings: &'a serde_json::Value,
    ) -> SendFuture<'a> {
        Box::pin(async move { outcome(message) })
    }
}

/// How long a simulated callee's phone rings before the outcome.
pub const CALL_RING: Duration = Duration::seconds(5);

/// How a simulated call ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// Answered; the callee talks this long and presses these keys.
    Answered {
        /// Talk time.
        talk: Duration,
        /// Keys pressed, if any.
        keypad: Option<String>,
    },
    /// Not answered: busy, no answer, voicemail or failed (with the reason).
    Ends {
        /// The end status.
        status: crate::calls::CallStatus,
        /// Why (failures).
        reason: Option<String>,
    },
    /// Rings until someone answers or ends it through the API or ingest (interactive calls).
    Rings,
}

/// A simulated call's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    /// Ringing time before the result.
    pub ring: Duration,
    /// The result.
    pub result: CallResult,
}

/// The simulator's outcome of calling `number`, by its last four digits:
/// - `0000`: busy; `0001`: no answer; `0002`: voicemail; `0003`: failed ("the number is not in
///   service");
/// - `0004`: rings until answered or ended through the API or ingest (click-to-call tests);
/// - `1xxx`: answered, the callee presses the last digit (`…1005` presses `5`);
/// - anything else: answered, no key pressed.
///
/// Answered calls talk `30 +` the last two digits seconds, after ringing [`CALL_RING`].
pub fn call_outcome(number: &str) -> CallOutcome {
    use crate::calls::CallStatus;
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let last4 = digits.get(digits.len().saturating_sub(4)..).unwrap_or("");
    let last2: i64 = digits
        .get(digits.len().saturating_sub(2)..)
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    let ends = |status, reason: Option<&str>| CallResult::Ends {
        status,
        reason: reason.map(str::to_string),
    };
    let result = match last4 {
        "0000" => ends(CallStatus::Busy, None),
        "0001" => ends(CallStatus::NoAnswer, None),
        "0002" => ends(CallStatus::Voicemail, None),
        "0003" => ends(CallStatus::Failed, Some("the number is not in service")),
        "0004" => CallResult::Rings,
        _ => CallResult::Answered {
            talk: Duration::seconds(30 + last2),
            keypad: last4
                .starts_with('1')
                .then(|| last4[3..].to_string())
                .filter(|d| !d.is_empty()),
        },
    };
    CallOutcome {
        ring: CALL_RING,
        result,
    }
}

/// How the simulated agent's phone or app at `endpoint` takes the agent's leg of a
/// click-to-call or callback: [`CallResult::Answered`] at once (app endpoints `client:…`, and
/// numbers the callee table of [`call_outcome`] answers), [`CallResult::Rings`] (numbers ending
/// `0004`: until `answerCall`), or [`CallResult::Ends`] (busy, no answer, failed; voicemail
/// counts as no answer: an agent's voicemail does not take calls).
pub fn agent_answers(endpoint: &str) -> CallResult {
    use crate::calls::CallStatus;
    if endpoint.starts_with("client:") {
        return CallResult::Answered {
            talk: Duration::zero(),
            keypad: None,
        };
    }
    match call_outcome(endpoint).result {
        CallResult::Ends {
            status: CallStatus::Voicemail,
            reason,
        } => CallResult::Ends {
            status: CallStatus::NoAnswer,
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(address: &str, attempt: i32) -> Result<Accepted, SendError> {
        outcome(&Outbound {
            to: vec![address.into()],
            attempt,
            ..Outbound::default()
        })
    }

    fn report(result: Result<Accepted, SendError>) -> Result<(Report, i64), SendError> {
        result.map(|a| {
            let (report, after) = a.report.unwrap_or((Report::Delivered, Duration::zero()));
            (report, after.num_seconds())
        })
    }

    #[test]
    fn outcomes_follow_the_recipient() {
        let failed = |r: &str| Report::Failed(r.into());
        assert_eq!(
            report(to("+4520000000", 1)),
            Err(SendError::Permanent("the number is not in service".into()))
        );
        assert_eq!(
            report(to("+4520000001", 2)),
            Err(SendError::Transient(
                "carrier temporarily unavailable".into()
            ))
        );
        assert_eq!(report(to("+4520000001", 3)), Ok((Report::Delivered, 0)));
        assert_eq!(report(to("+4520000002", 1)), Ok((Report::Delivered, 60)));
        assert_eq!(
            report(to("+4520000003", 1)),
            Ok((failed("the handset is unreachable"), 0))
        );
        assert_eq!(report(to("+4520001234", 1)), Ok((Report::Delivered, 0)));
        assert_eq!(
            report(to("fail+x@example.com", 1)),
            Err(SendError::Permanent("the mailbox does not exist".into()))
        );
        assert_eq!(
            report(to("Retry+x@example.com", 1)),
            Err(SendError::Transient(
                "carrier temporarily unavailable".into()
            ))
        );
        assert_eq!(
            report(to("delay+x@example.com", 1)),
            Ok((Report::Delivered, 60))
        );
        assert_eq!(
            report(to("bounce+x@example.com", 1)),
            Ok((failed("the message bounced"), 0))
        );
        assert_eq!(report(to("ann@example.com", 1)), Ok((Report::Delivered, 0)));
        assert_eq!(
            report(outcome(&Outbound {
                to: vec!["ann@example.com".into()],
                bcc: vec!["fail+audit@example.com".into()],
                attempt: 1,
                ..Outbound::default()
            })),
            Err(SendError::Permanent("the mailbox does not exist".into()))
        );
    }
}
