//! Name normalisation: turns a name as written ("NORIEGA, Manuel Antonio", "Ñoño O'Brien-Smith",
//! "ANGLO-CARIBBEAN CO., LTD.") into the tokens that are compared.
//!
//! The steps, in order:
//! 1. **Accents and scripts folded to ASCII** with `deunicode` (é → e, ß → ss, Ł → L, ø → o; other
//!    scripts are transliterated: Привет → Privet). Unicode decomposition alone would leave ß, Ł,
//!    ø and every non-Latin letter untouched.
//! 2. **Lower case.**
//! 3. **Punctuation**: apostrophes and full stops join the letters around them (`O'Brien` → `obrien`,
//!    `S.A.` → `sa`); every other non-alphanumeric character separates tokens (`AL-ZUMAR` → `al zumar`,
//!    `CO.,LTD.` → `co ltd`).
//! 4. **Noise tokens** are *dropped from the comparison* rather than compared: they carry little
//!    identity and are spelled inconsistently ("BIN LADIN" / "Bin Laden"), and a shared legal form
//!    must not make two companies alike (`ACME TRADING LTD` and `ZENITH TRADING LTD` are compared as
//!    `acme trading` against `zenith trading`).
//!    - [`LEGAL_FORMS`] and [`HONORIFICS`] are always dropped;
//!    - [`PARTICLES`] (`al`, `bin`, `de`, `van`, `the`, ...) and single letters (initials) are
//!      dropped only when at least two other tokens remain: in "Pieter van Dijk" `van` is a
//!      particle, in "Le Van Hung" (Vietnamese) `le` and `van` are names, in "AL-QAIDA" the article
//!      is half the name, and "A A TRADING FZCO" must not shrink to `trading`;
//!    - a name made of noise alone ("THE COMPANY LTD") keeps all its tokens, so it can be compared.
//!
//!    The same rules apply to listed names and to the names screened, so both sides agree.
//! 5. **Word order** is made irrelevant: the tokens are sorted, and the matcher pairs tokens without
//!    regard to position, so "LAST, First Middle" (the SDN way of writing individuals) equals
//!    "First Middle Last".
//!
//! Not done, deliberately: phonetic keys (Soundex and the like: Jaro-Winkler on tokens already
//! absorbs most spelling variants, and phonetic codes merge too many unrelated names), joining or
//! splitting compound tokens ("Abdul Rahman" / "Abdulrahman"; Jaro-Winkler partly covers it, and
//! an article written joined, "Alzawahiri" against "AL-ZAWAHIRI", is not matched), and translating
//! legal forms between languages (a legal form is dropped, whatever its language).

/// Legal forms, always dropped (`S.A. DE C.V.`, `SDN. BHD.`, `CO., LTD.` all vanish). Sorted.
/// Generic business words (`trading`, `bank`, `shipping`, `group`, `international`) are *not*
/// here: they tell companies apart more often than they confuse them, and the penalty for
/// unpaired tokens keeps one shared generic word from making a match.
pub const LEGAL_FORMS: &[&str] = &[
    "ag",
    "bhd",
    "cia",
    "cjsc",
    "co",
    "company",
    "corp",
    "corporation",
    "cv",
    "fzc",
    "fzco",
    "fze",
    "gmbh",
    "inc",
    "incorporated",
    "jsc",
    "kg",
    "limited",
    "llc",
    "llp",
    "lp",
    "ltd",
    "ltda",
    "nv",
    "ojsc",
    "ooo",
    "pao",
    "pjsc",
    "plc",
    "pte",
    "pvt",
    "sa",
    "sarl",
    "sas",
    "sdn",
    "sl",
    "spa",
    "srl",
    "zao",
];

/// Honorifics, always dropped. Sorted.
pub const HONORIFICS: &[&str] = &["dr", "miss", "mr", "mrs", "ms", "prof", "sir"];

/// Particles and connectors, dropped when two other tokens remain: Arabic article and patronymic
/// particles, Romance and Germanic name particles, English connectors. `abu` and `abd` are *not*
/// here (they are parts of names), nor is `ben` (as often a first name as a particle). Sorted.
pub const PARTICLES: &[&str] = &[
    "al", "and", "bin", "bint", "da", "das", "de", "del", "della", "den", "der", "di", "do", "dos", "du", "el", "et",
    "ibn", "la", "le", "of", "the", "ul", "und", "van", "von", "y",
];

/// What a token is to the comparison (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Name,
    /// A particle or a single letter: kept when fewer than two names remain.
    Minor,
    /// A legal form or an honorific: kept only when nothing else is there.
    Noise,
}

fn kind_of(token: &str) -> TokenKind {
    if LEGAL_FORMS.binary_search(&token).is_ok() || HONORIFICS.binary_search(&token).is_ok() {
        TokenKind::Noise
    } else if token.len() <= 1 || PARTICLES.binary_search(&token).is_ok() {
        TokenKind::Minor
    } else {
        TokenKind::Name
    }
}

/// The tokens of `name` that are compared, sorted (see the module docs for the rules). Empty if the
/// name has no letters or digits at all.
pub fn normalize_name(name: &str) -> Vec<String> {
    let ascii = deunicode::deunicode(name);
    let mut all_tokens: Vec<(TokenKind, String)> = Vec::new();
    let mut current = String::new();
    for character in ascii.chars().chain(std::iter::once(' ')) {
        if character.is_ascii_alphanumeric() {
            current.push(character.to_ascii_lowercase());
        } else if matches!(character, '\'' | '.' | '`') {
            // Joins: O'Brien, S.A.
        } else if !current.is_empty() {
            let token = std::mem::take(&mut current);
            all_tokens.push((kind_of(&token), token));
        }
    }
    let names = all_tokens.iter().filter(|(kind, _)| *kind == TokenKind::Name).count();
    let keep = |kind: TokenKind| match kind {
        TokenKind::Name => true,
        TokenKind::Minor => names < 2,
        TokenKind::Noise => false,
    };
    let mut tokens: Vec<String> =
        all_tokens.into_iter().filter(|(kind, _)| names == 0 || keep(*kind)).map(|(_, token)| token).collect();
    tokens.sort_unstable();
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: &[&str]) {
        assert_eq!(normalize_name(name), expected, "normalising {name:?}");
    }

    #[test]
    fn noise_lists_are_sorted_for_binary_search() {
        for list in [LEGAL_FORMS, HONORIFICS, PARTICLES] {
            assert!(list.windows(2).all(|pair| pair[0] < pair[1]), "{list:?}");
        }
    }

    #[test]
    fn names_normalise_to_sorted_comparable_tokens() {
        // Word order: the SDN's "LAST, First Middle" equals "First Middle Last".
        check("NORIEGA, Manuel Antonio", &["antonio", "manuel", "noriega"]);
        check("Manuel Antonio Noriega", &["antonio", "manuel", "noriega"]);
        // Accents and letters Unicode does not decompose.
        check("José Müller-Lüdenscheidt", &["jose", "ludenscheidt", "muller"]);
        check("Łukasz Strauß Ørsted", &["lukasz", "orsted", "strauss"]);
        // Apostrophes and full stops join, other punctuation separates.
        check("Seán O'Brien", &["obrien", "sean"]);
        check("ANGLO-CARIBBEAN CO., LTD.", &["anglo", "caribbean"]);
        check("FELIX B. MADURO S.A.", &["felix", "maduro"]);
        check("GRUPO EMPRESARIAL S.A. DE C.V.", &["empresarial", "grupo"]);
        // Particles, honorifics, initials.
        check("BIN LADIN, Usama bin Muhammad bin Awad", &["awad", "ladin", "muhammad", "usama"]);
        check("AL ZAWAHIRI, Dr. Ayman", &["ayman", "zawahiri"]);
        check("CRUZ, Juan M. de la", &["cruz", "juan"]);
        check("Pieter van Dijk", &["dijk", "pieter"]);
        // Particles stay when fewer than two other tokens would remain.
        check("Le Van Hung", &["hung", "le", "van"]);
        check("AL-QAIDA", &["al", "qaida"]);
        check("Mr. Smith", &["smith"]);
        // A name of noise alone keeps its tokens; a name without letters has none.
        check("The Company Ltd", &["company", "ltd", "the"]);
        check("THE BANK LTD", &["bank", "the"]);
        check("A A TRADING FZCO", &["a", "a", "trading"]);
        check("-- / --", &[]);
        // Other scripts are transliterated.
        check("Владимир Путин", &["putin", "vladimir"]);
    }
}
