//! Greenlight's mail through Amazon SES: whether the account may send to anyone (out of
//! the SES sandbox) in the deployment's region, and whether SES has an SMTP endpoint there.
//! Setup's pre-flight and `status` report it; nothing here changes the account.

use anyhow::Result;
use serde_json::{Value, json};

use crate::aws::Aws;
use crate::error::describe;

/// Regions where SES has no SMTP endpoint ("Amazon SES SMTP endpoints", SES developer
/// guide): Greenlight, which sends only by SMTP, cannot send mail there.
const NO_SMTP_REGIONS: [&str; 5] = [
    "af-south-1",
    "ap-southeast-3",
    "eu-south-1",
    "il-central-1",
    "me-south-1",
];

/// The account's SES sending state in one region (SESv2 GetAccount).
#[derive(Clone, Debug, PartialEq)]
pub struct MailAccount {
    pub region: String,
    /// Out of the sandbox: mail may go to any address.
    pub production: bool,
    pub sending_enabled: bool,
    pub max_24_hour_send: Option<f64>,
    /// A production-access request under review (PENDING, DENIED, ...).
    pub review: Option<String>,
}

/// Reads the account's SES state; `Err` carries one readable line (e.g. no permission).
pub async fn account(aws: &Aws) -> Result<MailAccount, String> {
    let out = aws
        .ses
        .get_account()
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(MailAccount {
        region: aws.region().to_string(),
        production: out.production_access_enabled(),
        sending_enabled: out.sending_enabled(),
        max_24_hour_send: out.send_quota().map(|q| q.max24_hour_send()),
        review: out
            .details()
            .and_then(|d| d.review_details())
            .and_then(|r| r.status())
            .map(|s| s.as_str().to_string()),
    })
}

impl MailAccount {
    /// One line for a person: what Greenlight's mail can do, and what to do about it.
    pub fn summary(&self, domain: &str) -> String {
        let region = &self.region;
        if NO_SMTP_REGIONS.contains(&region.as_str()) {
            return format!(
                "Amazon SES has no SMTP endpoint in {region}: Greenlight cannot send mail (sign-up confirmations, password resets). Deploy in a region with one, e.g. eu-central-1 or us-east-1."
            );
        }
        if !self.sending_enabled {
            return format!(
                "sending is paused for this account in {region} (SES): Greenlight's mail is refused. See the SES account dashboard for the reason."
            );
        }
        if self.production {
            return format!(
                "Greenlight sends mail from no-reply@{domain} through Amazon SES ({region})."
            );
        }
        let quota = self
            .max_24_hour_send
            .map(|q| format!(", at most {q:.0} a day"))
            .unwrap_or_default();
        let review = match self.review.as_deref() {
            Some("PENDING") => " A request for production access is under review.".to_string(),
            Some(other) => format!(" The last request for production access: {other}."),
            None => String::new(),
        };
        format!(
            "this account is in the Amazon SES sandbox in {region}: Greenlight's mail reaches only addresses verified in SES{quota}.{review}"
        )
    }

    /// The step that ends the limit, when there is one to take (the sandbox); said once per
    /// command, beside the summary where the command reports mail in full.
    pub fn remedy(&self, domain: &str) -> Option<String> {
        let region = &self.region;
        (self.limited()
            && self.sending_enabled
            && !NO_SMTP_REGIONS.contains(&region.as_str())
            && !self.production)
            .then(|| format!(
                "request production access in the SES console (Account dashboard → Request production access) or with `aws sesv2 put-account-details --region {region} --production-access-enabled --mail-type TRANSACTIONAL --website-url https://{domain} --use-case-description \"Greenlight (BigBlueButton) account mail\"`"
            ))
    }

    /// Whether the summary is a warning (mail does not reach everyone).
    pub fn limited(&self) -> bool {
        NO_SMTP_REGIONS.contains(&self.region.as_str()) || !self.sending_enabled || !self.production
    }

    pub fn to_json(&self, domain: &str) -> Value {
        json!({
            "region": self.region,
            "production_access": self.production,
            "sending_enabled": self.sending_enabled,
            "max_24_hour_send": self.max_24_hour_send,
            "review": self.review,
            "smtp_endpoint": !NO_SMTP_REGIONS.contains(&self.region.as_str()),
            "summary": self.summary(domain),
            "remedy": self.remedy(domain),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(region: &str, production: bool, sending: bool, review: Option<&str>) -> MailAccount {
        MailAccount {
            region: region.into(),
            production,
            sending_enabled: sending,
            max_24_hour_send: Some(200.0),
            review: review.map(str::to_string),
        }
    }

    #[test]
    fn the_sandbox_is_a_warning_with_the_step_that_ends_it() {
        let a = account("eu-west-1", false, true, None);
        assert!(a.limited());
        let s = a.summary("bbb.example.org");
        assert!(s.contains("sandbox in eu-west-1"), "{s}");
        assert!(s.contains("at most 200 a day"), "{s}");
        assert!(
            s.len() <= 140,
            "one short line, not the 420 characters of old: {s}"
        );
        let r = a.remedy("bbb.example.org").unwrap();
        assert!(
            r.contains(
                "aws sesv2 put-account-details --region eu-west-1 --production-access-enabled"
            ),
            "{r}"
        );
        assert!(r.contains("--website-url https://bbb.example.org"), "{r}");
        let s = account("eu-west-1", false, true, Some("PENDING")).summary("d.org");
        assert!(s.contains("under review"), "{s}");
    }

    #[test]
    fn production_access_is_fine_unless_sending_is_paused_or_there_is_no_smtp() {
        let a = account("eu-west-1", true, true, Some("GRANTED"));
        assert!(!a.limited());
        assert_eq!(a.remedy("d.org"), None);
        assert_eq!(
            a.summary("bbb.example.org"),
            "Greenlight sends mail from no-reply@bbb.example.org through Amazon SES (eu-west-1)."
        );
        let paused = account("eu-west-1", true, false, None);
        assert!(paused.limited());
        assert!(paused.summary("d.org").contains("sending is paused"));
        let no_smtp = account("eu-south-1", true, true, None);
        assert!(no_smtp.limited());
        assert!(
            no_smtp
                .summary("d.org")
                .contains("no SMTP endpoint in eu-south-1")
        );
        assert_eq!(no_smtp.to_json("d.org")["smtp_endpoint"], false);
    }
}
