//! Name conversions: key text to variant names, struct names to table names.

/// `banner` -> `Banner`, `site-banner` / `site_banner` -> `SiteBanner`,
/// `db.migrations` -> `DbMigrations`. Non-alphanumeric characters separate
/// words and are dropped.
pub fn upper_camel(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut upper_next = true;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if upper_next {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            upper_next = false;
        } else {
            upper_next = true;
        }
    }
    out
}

/// `SiteConfig` -> `siteConfig`, `HTTPFlags` -> `hTTPFlags`.
pub fn lower_camel(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_names() {
        assert_eq!(upper_camel("banner"), "Banner");
        assert_eq!(upper_camel("site-banner"), "SiteBanner");
        assert_eq!(upper_camel("google_oauth"), "GoogleOauth");
        assert_eq!(upper_camel("db.migrations"), "DbMigrations");
        assert_eq!(upper_camel("siteBanner"), "SiteBanner");
        assert_eq!(upper_camel("2fa"), "2fa");
        assert_eq!(upper_camel("--"), "");
        assert_eq!(lower_camel("SiteConfig"), "siteConfig");
        assert_eq!(lower_camel(""), "");
    }
}
