//! The languages text is analysed in, and telling which one a text is written in.
//!
//! Detection counts each language's commonest function words in the text: they make up a
//! large share of any sentence, so a paragraph is recognised from a handful of words, and the
//! counting is a table look-up per word (no model, no allocation beyond lowercasing). A text
//! with fewer than two function words, or as many of one language's as another's, is not
//! decided: the caller falls back to what it knows (the tenant's chunks' majority, English).

use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    English,
    French,
    Spanish,
    German,
    Italian,
    Portuguese,
    Dutch,
}

const EN: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how", "i", "in",
    "is", "it", "its", "me", "my", "of", "on", "or", "that", "the", "this", "to", "was", "what",
    "when", "where", "which", "who", "why", "will", "with", "you", "your",
];
const FR: &[&str] = &[
    "au", "aux", "avec", "ce", "ces", "cette", "dans", "de", "des", "du", "elle", "en", "est",
    "et", "il", "je", "la", "le", "les", "leur", "ma", "mais", "me", "mes", "mon", "nous", "ou",
    "où", "par", "pour", "qu", "que", "qui", "sa", "se", "ses", "son", "sont", "sur", "ta", "te",
    "tu", "un", "une", "vos", "votre", "vous", "y", "c", "d", "j", "l", "m", "n", "s", "t",
];
const ES: &[&str] = &[
    "al", "con", "del", "el", "en", "es", "esta", "este", "la", "las", "lo", "los", "mi", "mis",
    "para", "pero", "por", "que", "se", "su", "sus", "un", "una", "usted", "y", "yo", "de", "hay",
    "cómo", "cuánto", "qué",
];
const DE: &[&str] = &[
    "auf", "aus", "bei", "bin", "das", "dass", "dem", "den", "der", "des", "die", "du", "ein",
    "eine", "einen", "einer", "es", "für", "ich", "im", "ist", "mit", "nach", "sie", "sind", "und",
    "von", "wie", "wir", "zu", "zum", "zur", "kann", "ihr", "ihre",
];
const IT: &[&str] = &[
    "al", "alla", "che", "con", "del", "della", "di", "e", "è", "gli", "il", "in", "la", "le",
    "lo", "nel", "nella", "per", "sono", "su", "un", "una", "uno", "come", "mio", "suo", "ci",
];
const PT: &[&str] = &[
    "ao", "com", "como", "da", "das", "de", "do", "dos", "e", "é", "em", "na", "nas", "no", "nos",
    "o", "os", "para", "por", "que", "se", "seu", "sua", "um", "uma", "você", "não",
];
const NL: &[&str] = &[
    "aan", "bij", "dat", "de", "die", "een", "en", "het", "hoe", "ik", "in", "is", "je", "met",
    "niet", "of", "om", "op", "te", "van", "voor", "wat", "we", "wij", "zijn", "u", "uw",
];

impl Language {
    pub const ALL: [Language; 7] = [
        Self::English,
        Self::French,
        Self::Spanish,
        Self::German,
        Self::Italian,
        Self::Portuguese,
        Self::Dutch,
    ];

    /// ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::French => "fr",
            Self::Spanish => "es",
            Self::German => "de",
            Self::Italian => "it",
            Self::Portuguese => "pt",
            Self::Dutch => "nl",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Function words left out of the index: they say nothing of what a text is about.
    pub fn stop_words(self) -> &'static [&'static str] {
        match self {
            Self::English => EN,
            Self::French => FR,
            Self::Spanish => ES,
            Self::German => DE,
            Self::Italian => IT,
            Self::Portuguese => PT,
            Self::Dutch => NL,
        }
    }

    pub fn is_stop_word(self, lower: &str) -> bool {
        stop_word_languages(lower) & (1 << self.index()) != 0
    }
}

/// Every function word with the languages it belongs to, one bit each: one look-up per word,
/// however many languages there are (index builds analyse millions of words).
static STOP_WORDS: LazyLock<HashMap<&'static str, u8>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for lang in Language::ALL {
        for w in lang.stop_words() {
            *map.entry(*w).or_insert(0u8) |= 1 << lang.index();
        }
    }
    map
});

fn stop_word_languages(lower: &str) -> u8 {
    STOP_WORDS.get(lower).copied().unwrap_or(0)
}

/// The language `text` is written in, when its function words tell (at least two of them,
/// and more of one language's than of any other's). Only the first 200 words are read.
pub fn detect(text: &str) -> Option<Language> {
    let mut counts = [0u32; 7];
    // Words as the analyzer splits them (letters and digits; an apostrophe ends a word, so
    // French `l'heure` gives `l` and `heure`), lowercased into one reused buffer; function
    // words are short, so longer words are skipped unread.
    let mut lower = String::new();
    let words = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(200);
    for word in words {
        if word.len() > 8 {
            continue;
        }
        lower.clear();
        lower.extend(word.chars().flat_map(char::to_lowercase));
        let langs = stop_word_languages(&lower);
        if langs == 0 {
            continue;
        }
        for lang in Language::ALL {
            if langs & (1 << lang.index()) != 0 {
                counts[lang.index()] += 1;
            }
        }
    }
    let mut best = (0u32, Language::English);
    let mut second = 0u32;
    for lang in Language::ALL {
        let c = counts[lang.index()];
        if c > best.0 {
            second = best.0;
            best = (c, lang);
        } else if c > second {
            second = c;
        }
    }
    (best.0 >= 2 && best.0 > second).then_some(best.1)
}

/// `word` without its diacritics (`réservation` → `reservation`), so that a customer who
/// types without accents still matches the page.
pub fn fold_diacritics(word: &str) -> std::borrow::Cow<'_, str> {
    if word.is_ascii() {
        return std::borrow::Cow::Borrowed(word);
    }
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => out.push('a'),
            'ç' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ñ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => out.push('o'),
            'ù' | 'ú' | 'û' | 'ü' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            'ß' => out.push_str("ss"),
            other => out.push(other),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_questions_are_told_apart_by_their_function_words() {
        for (text, lang) in [
            ("How long do I have to return an item?", Language::English),
            (
                "Le restaurant est fermé le dimanche et le lundi.",
                Language::French,
            ),
            (
                "je peux venir avec ma propre bouteille de vin ?",
                Language::French,
            ),
            (
                "¿Hacen envíos a España? ¿Cuánto cuesta el envío?",
                Language::Spanish,
            ),
            (
                "Wie lange dauert der Versand nach Berlin und was kostet er?",
                Language::German,
            ),
            (
                "Quanto costa la spedizione per il mio ordine?",
                Language::Italian,
            ),
            (
                "Quanto custa o envio para o Brasil e como funciona?",
                Language::Portuguese,
            ),
            (
                "Hoe lang duurt de levering en wat kost het?",
                Language::Dutch,
            ),
        ] {
            assert_eq!(detect(text), Some(lang), "{text}");
        }
    }

    #[test]
    fn too_few_function_words_decide_nothing() {
        assert_eq!(detect("menu enfant"), None);
        assert_eq!(detect("nut allergy"), None);
        assert_eq!(detect(""), None);
    }

    #[test]
    fn diacritics_fold_to_their_base_letters() {
        assert_eq!(fold_diacritics("réservation"), "reservation");
        assert_eq!(fold_diacritics("œuf"), "oeuf");
        assert_eq!(fold_diacritics("straße"), "strasse");
        assert_eq!(fold_diacritics("plain"), "plain");
    }
}
