//! The Kernel file: one human-editable JSON document holding, per tenant, exactly the data of the
//! Kernel HTTP contract. Loading checks structure (unknown fields are errors, to catch typos) and
//! meaning (unique ids, known roles, sane numbers), and every error names where the problem is.

use std::collections::{BTreeMap, HashSet};

use lynx_model::kernel::{Document, FinanceSummary, Policies, TenantRecord, TenantSettings, UserRecord, Vendor};
use lynx_model::{TenantId, UserId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelFile {
    pub version: u32,
    pub tenants: Vec<TenantEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    pub tenant_id: TenantId,
    pub name: String,
    pub plan: String,
    pub region: String,
    pub enabled_modules: Vec<String>,
    pub feature_flags: BTreeMap<String, bool>,
    pub settings: TenantSettings,
    pub users: Vec<UserRecord>,
    pub policies: std::sync::Arc<Policies>,
    pub vendors: Vec<Vendor>,
    pub documents: Vec<Document>,
    pub finance: Vec<FinanceSummary>,
}

impl TenantEntry {
    pub fn record(&self) -> TenantRecord {
        TenantRecord {
            tenant_id: self.tenant_id.clone(),
            name: self.name.clone(),
            plan: self.plan.clone(),
            region: self.region.clone(),
            enabled_modules: self.enabled_modules.clone(),
            feature_flags: self.feature_flags.clone(),
            settings: self.settings.clone(),
        }
    }

    pub fn user(&self, user: &UserId) -> Option<&UserRecord> {
        self.users.iter().find(|u| &u.user_id == user)
    }
}

/// A Kernel file that cannot be used: which file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Kernel file {source_name}: {location}: {problem}")]
pub struct KernelFileError {
    pub source_name: String,
    pub location: String,
    pub problem: String,
}

impl KernelFile {
    /// Parses and validates a Kernel file; `source_name` is how errors name it (a path, or "built-in demo data").
    pub fn parse(text: &str, source_name: &str) -> Result<Self, KernelFileError> {
        let err = |location: String, problem: String| KernelFileError {
            source_name: source_name.to_string(),
            location,
            problem,
        };
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: KernelFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let inner = e.inner();
            let location = match e.path().to_string().as_str() {
                "." => format!("line {} column {}", inner.line(), inner.column()),
                p => format!("{p} (line {} column {})", inner.line(), inner.column()),
            };
            // serde_json appends " at line L column C"; the location already says it.
            let msg = inner.to_string();
            let problem = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            err(location, problem)
        })?;
        file.validate().map_err(|(l, p)| err(l, p))?;
        Ok(file)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        if self.version != 1 {
            return Err(("version".into(), format!("unsupported version {} (this Lynx reads version 1)", self.version)));
        }
        if self.tenants.is_empty() {
            return Err(("tenants".into(), "must list at least one tenant".into()));
        }
        let mut tenant_ids = HashSet::new();
        for (ti, t) in self.tenants.iter().enumerate() {
            let at = |rest: &str| format!("tenants[{ti}]{rest}");
            if !tenant_ids.insert(&t.tenant_id) {
                return Err((at(".tenant_id"), format!("duplicate tenant_id {:?}", t.tenant_id.as_str())));
            }
            if t.name.trim().is_empty() {
                return Err((at(".name"), "must not be empty".into()));
            }
            if t.settings.approval_threshold < Decimal::ZERO {
                return Err((at(".settings.approval_threshold"), "must not be negative".into()));
            }
            if !valid_currency(&t.settings.currency) {
                return Err((at(".settings.currency"), "must be a three-letter ISO 4217 code such as USD".into()));
            }
            let roles: HashSet<&str> = t.policies.role_gates.keys().map(String::as_str).collect();
            let mut user_ids = HashSet::new();
            for (ui, u) in t.users.iter().enumerate() {
                if !user_ids.insert(&u.user_id) {
                    return Err((at(&format!(".users[{ui}].user_id")), format!("duplicate user_id {:?}", u.user_id.as_str())));
                }
                if u.role.trim().is_empty() {
                    return Err((at(&format!(".users[{ui}].role")), "must not be empty".into()));
                }
            }
            for (ri, r) in t.policies.approval_rules.iter().enumerate() {
                if r.approval_count == 0 {
                    return Err((at(&format!(".policies.approval_rules[{ri}].approval_count")), "must be at least 1".into()));
                }
                for (field, hours) in [("decision_deadline_hours", r.decision_deadline_hours), ("approval_validity_hours", r.approval_validity_hours)] {
                    if !(hours > 0.0 && hours <= 8760.0) {
                        return Err((at(&format!(".policies.approval_rules[{ri}].{field}")), "must be more than 0 and at most 8760 hours".into()));
                    }
                }
                if r.threshold_amount.is_some_and(|a| a < Decimal::ZERO) {
                    return Err((at(&format!(".policies.approval_rules[{ri}].threshold_amount")), "must not be negative".into()));
                }
                for role in &r.required_role {
                    if !roles.contains(role.as_str()) {
                        return Err((
                            at(&format!(".policies.approval_rules[{ri}].required_role")),
                            format!("role {role:?} has no entry in policies.role_gates"),
                        ));
                    }
                }
            }
            let mut tools = HashSet::new();
            for (pi, p) in t.policies.tool_policies.iter().enumerate() {
                if !tools.insert(&p.tool_id) {
                    return Err((at(&format!(".policies.tool_policies[{pi}].tool_id")), format!("duplicate policy for {:?}", p.tool_id)));
                }
            }
            for currency in t.policies.spend_limits.keys() {
                if let Err(e) = lynx_model::money::Currency::parse(currency) {
                    return Err((at(&format!(".policies.spend_limits.{currency}")), format!("the key {e}")));
                }
            }
            let mut vendor_ids = HashSet::new();
            for (vi, v) in t.vendors.iter().enumerate() {
                if !vendor_ids.insert(&v.vendor_id) || v.vendor_id.is_empty() {
                    return Err((at(&format!(".vendors[{vi}].vendor_id")), format!("empty or duplicate vendor_id {:?}", v.vendor_id)));
                }
            }
            let mut periods = HashSet::new();
            for (fi, f) in t.finance.iter().enumerate() {
                if !periods.insert(&f.period) {
                    return Err((at(&format!(".finance[{fi}].period")), format!("duplicate period {:?}", f.period)));
                }
                if f.revenue < Decimal::ZERO || f.expenses < Decimal::ZERO || f.outstanding < Decimal::ZERO {
                    return Err((at(&format!(".finance[{fi}]")), "revenue, expenses and outstanding must not be negative".into()));
                }
            }
        }
        Ok(())
    }

    pub fn tenant(&self, id: &TenantId) -> Option<&TenantEntry> {
        self.tenants.iter().find(|t| &t.tenant_id == id)
    }
}

fn valid_currency(c: &str) -> bool {
    c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_is_valid() {
        let f = KernelFile::parse(crate::DEMO_DATA, "built-in demo data").unwrap();
        assert!(f.tenants.len() >= 2);
        let acme = f.tenant(&TenantId::parse("tenant-123").unwrap()).unwrap();
        assert_eq!(acme.name, "Acme Manufacturing");
        assert_eq!(acme.settings.approval_threshold.to_string(), "1000.00");
    }

    #[test]
    fn errors_name_the_file_the_place_and_the_problem() {
        let mut v: serde_json::Value = serde_json::from_str(crate::DEMO_DATA).unwrap();
        v["tenants"][0]["users"][1]["rol"] = "x".into();
        let e = KernelFile::parse(&v.to_string(), "k.json").unwrap_err();
        assert_eq!(e.source_name, "k.json");
        assert!(e.location.starts_with("tenants[0].users[1]"), "{e}");
        assert!(e.problem.contains("unknown field `rol`"), "{e}");

        let e = KernelFile::parse("{\"version\": 1, \"tenants\": [", "k.json").unwrap_err();
        assert!(e.to_string().starts_with("Kernel file k.json: "), "{e}");

        let mut v: serde_json::Value = serde_json::from_str(crate::DEMO_DATA).unwrap();
        v["tenants"][1]["tenant_id"] = "tenant-123".into();
        let e = KernelFile::parse(&v.to_string(), "k.json").unwrap_err();
        assert_eq!(e.location, "tenants[1].tenant_id");
    }
}
