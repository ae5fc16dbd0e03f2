//! Rules of contact groups (Multisender's account filters): `{field, operator, value}` over
//! contact fields and custom attributes, matched all-of, and compiled into one SQL condition over
//! the `contacts` table, so membership is always decided by the database (never by loading
//! contacts).
//!
//! Fields a rule can name:
//! - text: `name` (the shown name, case-insensitive), `displayName`, `firstName`, `middleName`,
//!   `lastName`, `email` (lower case), `phone`, `company`, `externalId`, `note`, and the address
//!   parts `address.street`, `address.city`, `address.postalCode`, `address.region`,
//!   `address.country`;
//! - text lists: `emails` (the primary and the additional emails, lower case) and `phones` (the
//!   primary and the additional phones);
//! - dates: `birthDate`; timestamps: `createdAt`, `updatedAt`, `lastContactedAt`;
//! - custom attributes of contacts as `attributes.<identifier>`, by the attribute's type (TEXT and
//!   SELECT are text, NUMBER, BOOLEAN, DATE).
//!
//! Operators by type: text and text lists take `EQ NE IN CONTAINS`; numbers, dates and
//! timestamps take `EQ NE GT LT GTE LTE IN`; booleans take `EQ NE`. `IN` needs a non-empty list
//! of values of the field's type; `CONTAINS` a non-empty text and is case-insensitive; `EQ`, `NE`
//! and `IN` compare text exactly (the `name`, `email` and `emails` values are lower-cased when the
//! rule is saved, as those fields are stored in lower case).
//!
//! Missing values: a contact without a value for the field (no company, no such attribute value,
//! no emails) matches no operator except `NE`: `NE` is exactly "not `EQ`". On a text list, `EQ`,
//! `IN` and `CONTAINS` match when any element does, and `NE` when no element equals the value.
//!
//! Rules are checked when saved (unknown fields, unknown or archived attributes, operators that do
//! not suit the type, values of the wrong type, option values that a SELECT attribute does not
//! have). A saved rule keeps working if its attribute is archived later: archived attributes keep
//! their values.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Func, Query};
use sea_orm::{Condition, DbBackend, Value as SqlValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::custom_attributes::service::AttributeType;
use crate::db::like_pattern;

use entity::{contact, contact_attribute_value as attribute_value};

/// Most rules a group has.
pub const MAX_RULES: usize = 20;
/// Most values an `IN` rule lists.
pub const MAX_IN_VALUES: usize = 100;
/// Longest text value of a rule.
pub const MAX_TEXT: usize = 1000;
/// Prefix of rule fields naming a custom attribute.
pub const ATTRIBUTE_PREFIX: &str = "attributes.";

/// How a rule compares a field with its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operator {
    /// Equal.
    Eq,
    /// Not equal (also true when the contact has no value).
    Ne,
    /// Greater than.
    Gt,
    /// Less than.
    Lt,
    /// Greater than or equal.
    Gte,
    /// Less than or equal.
    Lte,
    /// Equal to one of a list of values.
    In,
    /// Contains the text, ignoring case.
    Contains,
}

impl Operator {
    /// The operator's name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "EQ",
            Operator::Ne => "NE",
            Operator::Gt => "GT",
            Operator::Lt => "LT",
            Operator::Gte => "GTE",
            Operator::Lte => "LTE",
            Operator::In => "IN",
            Operator::Contains => "CONTAINS",
        }
    }
}

/// A rule as stored in `contact_groups.rules` and shown in the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// The field: a contact field or `attributes.<identifier>`.
    pub field: String,
    /// The operator.
    pub operator: Operator,
    /// The value: a JSON scalar of the field's type, or a list of them for `IN`.
    pub value: Value,
    /// For attribute rules, the attribute's type (`TEXT`, `SELECT`, `NUMBER`, `BOOLEAN`, `DATE`)
    /// when the rule was saved; attribute types never change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_type: Option<String>,
}

/// The type of a field's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Text.
    Text,
    /// A list of texts (emails, phones).
    TextList,
    /// A number.
    Number,
    /// True or false.
    Boolean,
    /// A calendar date (`YYYY-MM-DD`).
    Date,
    /// A point in time (RFC 3339).
    Timestamp,
}

impl ValueKind {
    fn describe(self) -> &'static str {
        match self {
            ValueKind::Text => "a text field",
            ValueKind::TextList => "a list of texts",
            ValueKind::Number => "a number field",
            ValueKind::Boolean => "a boolean field",
            ValueKind::Date => "a date field",
            ValueKind::Timestamp => "a timestamp field",
        }
    }

    fn example(self) -> &'static str {
        match self {
            ValueKind::Text | ValueKind::TextList => "a string",
            ValueKind::Number => "a number",
            ValueKind::Boolean => "true or false",
            ValueKind::Date => "a date such as \"2026-11-23\"",
            ValueKind::Timestamp => "a timestamp such as \"2026-11-23T10:00:00Z\"",
        }
    }

    /// Why `operator` does not apply to `field` of this type, if it does not.
    fn refuses(self, operator: Operator, field: &str) -> Option<String> {
        let text = matches!(self, ValueKind::Text | ValueKind::TextList);
        let ordered = matches!(
            self,
            ValueKind::Number | ValueKind::Date | ValueKind::Timestamp
        );
        match operator {
            Operator::Eq | Operator::Ne => None,
            Operator::In if self != ValueKind::Boolean => None,
            Operator::In => Some(format!("{field} is a boolean field: use EQ or NE")),
            Operator::Contains if text => None,
            Operator::Contains => Some(format!(
                "CONTAINS applies only to text fields; {field} is {}",
                self.describe()
            )),
            Operator::Gt | Operator::Lt | Operator::Gte | Operator::Lte if ordered => None,
            _ => Some(format!(
                "{} applies only to number, date and timestamp fields; {field} is {}",
                operator.as_str(),
                self.describe()
            )),
        }
    }
}

/// Where a field's value lives.
#[derive(Clone, Debug)]
enum Source {
    /// A column of `contacts`.
    Column(contact::Column),
    /// A key of the `contacts.address` JSON object.
    Address(&'static str),
    /// A primary column and a JSON array column of more values.
    List(contact::Column, contact::Column),
    /// A custom attribute value, by identifier.
    Attribute(String, AttributeType),
}

/// A resolved field.
#[derive(Clone, Debug)]
struct Target {
    source: Source,
    kind: ValueKind,
    /// Values are stored in lower case, so rule values are lower-cased too.
    lower: bool,
}

/// The contact fields rules can name.
pub const CONTACT_FIELDS: [&str; 21] = [
    "name",
    "displayName",
    "firstName",
    "middleName",
    "lastName",
    "email",
    "emails",
    "phone",
    "phones",
    "company",
    "externalId",
    "note",
    "address.street",
    "address.city",
    "address.postalCode",
    "address.region",
    "address.country",
    "birthDate",
    "createdAt",
    "updatedAt",
    "lastContactedAt",
];

fn contact_field(name: &str) -> Option<Target> {
    use contact::Column as C;
    let (source, kind, lower) = match name {
        "name" => (Source::Column(C::SortName), ValueKind::Text, true),
        "displayName" => (Source::Column(C::DisplayName), ValueKind::Text, false),
        "firstName" => (Source::Column(C::FirstName), ValueKind::Text, false),
        "middleName" => (Source::Column(C::MiddleName), ValueKind::Text, false),
        "lastName" => (Source::Column(C::LastName), ValueKind::Text, false),
        "email" => (Source::Column(C::Email), ValueKind::Text, true),
        "emails" => (
            Source::List(C::Email, C::AdditionalEmails),
            ValueKind::TextList,
            true,
        ),
        "phone" => (Source::Column(C::Phone), ValueKind::Text, false),
        "phones" => (
            Source::List(C::Phone, C::AdditionalPhones),
            ValueKind::TextList,
            false,
        ),
        "company" => (Source::Column(C::Company), ValueKind::Text, false),
        "externalId" => (Source::Column(C::ExternalId), ValueKind::Text, false),
        "note" => (Source::Column(C::Note), ValueKind::Text, false),
        "address.street" => (Source::Address("street"), ValueKind::Text, false),
        "address.city" => (Source::Address("city"), ValueKind::Text, false),
        "address.postalCode" => (Source::Address("postalCode"), ValueKind::Text, false),
        "address.region" => (Source::Address("region"), ValueKind::Text, false),
        "address.country" => (Source::Address("country"), ValueKind::Text, false),
        "birthDate" => (Source::Column(C::BirthDate), ValueKind::Date, false),
        "createdAt" => (Source::Column(C::CreatedAt), ValueKind::Timestamp, false),
        "updatedAt" => (Source::Column(C::UpdatedAt), ValueKind::Timestamp, false),
        "lastContactedAt" => (
            Source::Column(C::LastContactedAt),
            ValueKind::Timestamp,
            false,
        ),
        _ => return None,
    };
    Some(Target {
        source,
        kind,
        lower,
    })
}

fn attribute_kind(ty: AttributeType) -> ValueKind {
    match ty {
        AttributeType::Text | AttributeType::Select => ValueKind::Text,
        AttributeType::Number => ValueKind::Number,
        AttributeType::Boolean => ValueKind::Boolean,
        AttributeType::Date => ValueKind::Date,
    }
}

/// What is wrong with a rule, by the part of it that is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The field is unknown.
    Field(String),
    /// The operator does not apply to the field's type.
    Operator(String),
    /// The value (or, with a suffix such as `.2`, an element of an `IN` list) is wrong.
    Value(String, String),
}

/// How a compiled rule tests a value.
#[derive(Clone, Debug)]
enum Test {
    /// `EQ` (also for `NE`, negated), `GT`, `LT`, `GTE`, `LTE`.
    Compare(Operator, SqlValue),
    /// `IN`.
    In(Vec<SqlValue>),
    /// `CONTAINS`, case-insensitive.
    Contains(String),
}

/// A rule checked and ready to become SQL.
#[derive(Clone, Debug)]
pub struct Compiled {
    target: Target,
    test: Test,
    negate: bool,
}

fn got(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// One value of the field's type, as SQL.
fn scalar(target: &Target, value: &Value) -> Result<SqlValue, String> {
    let kind = target.kind;
    let wrong = || format!("expected {}, got {}", kind.example(), got(value));
    match (kind, value) {
        (ValueKind::Text | ValueKind::TextList, Value::String(s)) => {
            if s.chars().count() > MAX_TEXT {
                return Err(format!("a text value has at most {MAX_TEXT} characters"));
            }
            Ok(if target.lower {
                s.to_lowercase().into()
            } else {
                s.clone().into()
            })
        }
        (ValueKind::Number, Value::Number(n)) => n
            .as_f64()
            .map(SqlValue::from)
            .ok_or_else(|| "the number is out of range".to_string()),
        (ValueKind::Boolean, Value::Bool(b)) => Ok((*b).into()),
        (ValueKind::Date, Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(SqlValue::from)
            .map_err(|_| format!("{s:?} is not a date such as \"2026-11-23\"")),
        (ValueKind::Timestamp, Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| SqlValue::from(t.with_timezone(&Utc)))
            .map_err(|_| format!("{s:?} is not a timestamp such as \"2026-11-23T10:00:00Z\"")),
        _ => Err(wrong()),
    }
}

fn resolve(rule: &Rule) -> Result<Target, Problem> {
    if let Some(identifier) = rule.field.strip_prefix(ATTRIBUTE_PREFIX) {
        let ty = rule
            .attribute_type
            .as_deref()
            .and_then(AttributeType::parse)
            .ok_or_else(|| Problem::Field(format!("no contact attribute {identifier:?}")))?;
        return Ok(Target {
            source: Source::Attribute(identifier.to_string(), ty),
            kind: attribute_kind(ty),
            lower: false,
        });
    }
    contact_field(&rule.field).ok_or_else(|| {
        Problem::Field(format!(
            "{:?} is not a contact field; use one of {} or attributes.<identifier>",
            rule.field,
            CONTACT_FIELDS.join(", ")
        ))
    })
}

/// Checks a rule (with its attribute type filled in for attribute rules) and compiles it.
pub fn compile(rule: &Rule) -> Result<Compiled, Problem> {
    let target = resolve(rule)?;
    if let Some(reason) = target.kind.refuses(rule.operator, &rule.field) {
        return Err(Problem::Operator(reason));
    }
    let test = match rule.operator {
        Operator::In => {
            let Value::Array(items) = &rule.value else {
                return Err(Problem::Value(
                    String::new(),
                    format!(
                        "IN needs a list of values, got {}; use EQ for one value",
                        got(&rule.value)
                    ),
                ));
            };
            if items.is_empty() || items.len() > MAX_IN_VALUES {
                return Err(Problem::Value(
                    String::new(),
                    format!("IN needs 1 to {MAX_IN_VALUES} values"),
                ));
            }
            let values = items
                .iter()
                .enumerate()
                .map(|(j, item)| {
                    scalar(&target, item).map_err(|m| Problem::Value(format!(".{j}"), m))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Test::In(values)
        }
        Operator::Contains => match &rule.value {
            Value::String(s) if s.is_empty() => {
                return Err(Problem::Value(
                    String::new(),
                    "CONTAINS needs some text".into(),
                ));
            }
            value => {
                scalar(&target, value).map_err(|m| Problem::Value(String::new(), m))?;
                Test::Contains(value.as_str().unwrap_or_default().to_string())
            }
        },
        operator => {
            let value =
                scalar(&target, &rule.value).map_err(|m| Problem::Value(String::new(), m))?;
            let operator = if operator == Operator::Ne {
                Operator::Eq
            } else {
                operator
            };
            Test::Compare(operator, value)
        }
    };
    Ok(Compiled {
        target,
        test,
        negate: rule.operator == Operator::Ne,
    })
}

/// The value as it is stored: lower-cased for fields stored in lower case.
pub fn normalized_value(rule: &Rule) -> Value {
    let lower = contact_field(&rule.field).is_some_and(|t| t.lower);
    let lowered = |v: &Value| match v {
        Value::String(s) if lower => Value::String(s.to_lowercase()),
        other => other.clone(),
    };
    match &rule.value {
        Value::Array(items) => Value::Array(items.iter().map(lowered).collect()),
        other => lowered(other),
    }
}

impl Compiled {
    /// The test applied to one value expression.
    fn predicate(&self, x: Expr) -> Expr {
        match &self.test {
            Test::Compare(Operator::Gt, v) => x.gt(v.clone()),
            Test::Compare(Operator::Lt, v) => x.lt(v.clone()),
            Test::Compare(Operator::Gte, v) => x.gte(v.clone()),
            Test::Compare(Operator::Lte, v) => x.lte(v.clone()),
            Test::Compare(_, v) => x.eq(v.clone()),
            Test::In(values) => x.is_in(values.iter().cloned()),
            Test::Contains(text) => Expr::expr(Func::lower(x)).like(like_pattern(text)),
        }
    }

    /// Whether a present value passes (never NULL, so `NOT` of it is its exact complement).
    fn present_and(&self, x: Expr) -> Expr {
        x.clone().is_not_null().and(self.predicate(x))
    }

    /// The rule as a condition on a row of `contacts` (the table unaliased, as in `FROM contacts`).
    pub fn condition(&self, backend: DbBackend) -> Expr {
        let positive = match &self.target.source {
            Source::Column(column) => self.present_and(Expr::col((contact::Entity, *column))),
            Source::Address(key) => {
                // `->>` extracts a JSON object's member as text on PostgreSQL and on SQLite (3.38+).
                // The key comes from the fixed field list above, never from input.
                self.present_and(Expr::cust(format!(r#"("contacts"."address" ->> '{key}')"#)))
            }
            Source::List(primary, more) => {
                let elements = match backend {
                    DbBackend::Postgres => "json_array_elements_text",
                    _ => "json_each",
                };
                let element = Expr::col((Alias::new("list_element"), Alias::new("value")));
                let any_more = Query::select()
                    .expr(Expr::val(1))
                    .from_function(
                        Func::cust(elements).arg(Expr::col((contact::Entity, *more))),
                        Alias::new("list_element"),
                    )
                    .and_where(self.predicate(element))
                    .to_owned();
                self.present_and(Expr::col((contact::Entity, *primary)))
                    .or(Expr::exists(any_more))
            }
            Source::Attribute(identifier, ty) => {
                use attribute_value::Column as V;
                let column = match ty {
                    AttributeType::Text | AttributeType::Select => V::TextValue,
                    AttributeType::Number => V::NumberValue,
                    AttributeType::Boolean => V::BoolValue,
                    AttributeType::Date => V::DateValue,
                };
                let value = Query::select()
                    .expr(Expr::val(1))
                    .from(attribute_value::Entity)
                    .and_where(
                        Expr::col((attribute_value::Entity, V::ContactId))
                            .equals((contact::Entity, contact::Column::Id)),
                    )
                    .and_where(Expr::col((attribute_value::Entity, V::Identifier)).eq(identifier))
                    .and_where(self.present_and(Expr::col((attribute_value::Entity, column))))
                    .to_owned();
                Expr::exists(value)
            }
        };
        if self.negate {
            positive.not()
        } else {
            positive
        }
    }
}

/// Reads a group's stored rules.
pub fn parse_rules(stored: &Value) -> Result<Vec<Rule>, String> {
    serde_json::from_value(stored.clone()).map_err(|e| format!("stored rules: {e}"))
}

/// All rules as one condition on `contacts` (all-of); `None` when there are no rules.
pub fn rules_condition(backend: DbBackend, rules: &[Compiled]) -> Option<Condition> {
    if rules.is_empty() {
        return None;
    }
    Some(rules.iter().fold(Condition::all(), |all, rule| {
        all.add(rule.condition(backend))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(field: &str, operator: Operator, value: Value) -> Rule {
        Rule {
            field: field.into(),
            operator,
            value,
            attribute_type: None,
        }
    }

    #[test]
    fn operators_must_suit_the_field_type() {
        assert!(compile(&rule("firstName", Operator::Contains, json!("an"))).is_ok());
        assert!(matches!(
            compile(&rule("firstName", Operator::Gt, json!("an"))),
            Err(Problem::Operator(_))
        ));
        let mut score = rule("attributes.score", Operator::Contains, json!("1"));
        score.attribute_type = Some("NUMBER".into());
        assert!(matches!(compile(&score), Err(Problem::Operator(_))));
        score.operator = Operator::Gte;
        score.value = json!(3);
        assert!(compile(&score).is_ok());
        let mut vip = rule("attributes.vip", Operator::In, json!([true]));
        vip.attribute_type = Some("BOOLEAN".into());
        assert!(matches!(compile(&vip), Err(Problem::Operator(_))));
    }

    #[test]
    fn values_must_have_the_field_type() {
        assert_eq!(
            compile(&rule("company", Operator::In, json!("Acme"))).err(),
            Some(Problem::Value(
                String::new(),
                "IN needs a list of values, got a string; use EQ for one value".into()
            ))
        );
        assert_eq!(
            compile(&rule("birthDate", Operator::In, json!(["2020-01-01", 3]))).err(),
            Some(Problem::Value(
                ".1".into(),
                "expected a date such as \"2026-11-23\", got a number".into()
            ))
        );
        assert!(matches!(
            compile(&rule("createdAt", Operator::Gt, json!("yesterday"))),
            Err(Problem::Value(..))
        ));
        assert!(matches!(
            compile(&rule("nickname", Operator::Eq, json!("x"))),
            Err(Problem::Field(_))
        ));
    }

    #[test]
    fn stored_rules_round_trip() {
        let rules = vec![rule("emails", Operator::Eq, json!("Ann@Example.com"))];
        let stored = serde_json::to_value(&rules).unwrap_or_default();
        assert_eq!(
            stored,
            json!([{ "field": "emails", "operator": "EQ", "value": "Ann@Example.com" }])
        );
        assert_eq!(parse_rules(&stored).ok(), Some(rules.clone()));
        assert_eq!(normalized_value(&rules[0]), json!("ann@example.com"));
    }
}
