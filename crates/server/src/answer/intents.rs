//! What a message is before anything is retrieved: a greeting or small talk (answered without
//! retrieval), a request for a person (handed off), or a question. And the rule-based rewrite
//! of a follow-up question into one that stands alone.

use cortex_search::lexical::Analyzer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    Greeting,
    Thanks,
    Goodbye,
    /// The customer asks for a human agent.
    Human,
    Question,
}

/// Lower case, accents folded, apostrophes unified, punctuation turned into spaces.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ß' => 's',
            '\'' | '’' | '`' => '\'',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        out.push(c);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hiya",
    "yo",
    "good morning",
    "good afternoon",
    "good evening",
    "bonjour",
    "salut",
    "bonsoir",
    "coucou",
    "hola",
    "buenos dias",
    "buenas tardes",
    "buenas noches",
    "buenas",
    "hallo",
    "guten tag",
    "guten morgen",
    "servus",
    "moin",
    "ciao",
    "buongiorno",
    "buonasera",
    "ola",
    "oi",
    "bom dia",
    "boa tarde",
    "boa noite",
    "hoi",
    "goedemorgen",
    "hej",
    "there",
    "team",
    "everyone",
];
const THANKS: &[&str] = &[
    "thanks",
    "thank you",
    "thx",
    "ty",
    "cheers",
    "much appreciated",
    "great",
    "perfect",
    "ok",
    "okay",
    "merci",
    "merci beaucoup",
    "super",
    "parfait",
    "gracias",
    "muchas gracias",
    "danke",
    "vielen dank",
    "danke schon",
    "grazie",
    "grazie mille",
    "obrigado",
    "obrigada",
    "bedankt",
    "tack",
    "a lot",
    "so much",
    "very much",
];
const GOODBYES: &[&str] = &[
    "bye",
    "goodbye",
    "good bye",
    "see you",
    "see ya",
    "au revoir",
    "a bientot",
    "adios",
    "hasta luego",
    "tschuss",
    "auf wiedersehen",
    "arrivederci",
    "tchau",
    "ate logo",
    "doei",
];

/// Phrases asking for a person, in the languages the widget meets most.
const HUMAN: &[&str] = &[
    // English
    "talk to a human",
    "speak to a human",
    "talk to a person",
    "speak to a person",
    "real person",
    "human agent",
    "live agent",
    "real human",
    "talk to someone",
    "speak to someone",
    "speak with someone",
    "talk with someone",
    "customer service agent",
    "talk to an agent",
    "speak to an agent",
    "speak with an agent",
    "representative",
    "talk to a real",
    "a human please",
    "human please",
    "operator please",
    // French
    "parler a un humain",
    "parler a une personne",
    "parler a quelqu'un",
    "un conseiller",
    "une conseillere",
    "vrai humain",
    "vraie personne",
    "personne reelle",
    "parler a un agent",
    "un operateur",
    // Spanish
    "hablar con una persona",
    "hablar con un humano",
    "hablar con alguien",
    "agente humano",
    "persona real",
    "hablar con un agente",
    "un asesor",
    // German
    "mit einem menschen",
    "echten menschen",
    "mit einem mitarbeiter",
    "mit jemandem sprechen",
    "echte person",
    // Italian
    "parlare con un operatore",
    "parlare con una persona",
    "parlare con un umano",
    "persona reale",
    // Portuguese
    "falar com um humano",
    "falar com uma pessoa",
    "falar com alguem",
    "atendente humano",
    "falar com um atendente",
    // Dutch
    "met een mens",
    "met een medewerker",
];

/// Whether `text` (folded) is made only of phrases from `lists`, with at most a few words.
fn only_phrases(text: &str, lists: &[&[&str]]) -> bool {
    let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    if words.is_empty() || words.len() > 6 {
        return false;
    }
    let mut i = 0;
    while i < words.len() {
        // The longest phrase that matches here ("merci beaucoup" before "merci").
        let longest = lists
            .iter()
            .flat_map(|l| l.iter())
            .map(|p| p.split(' ').collect::<Vec<_>>())
            .filter(|p| i + p.len() <= words.len() && words[i..i + p.len()] == p[..])
            .map(|p| p.len())
            .max();
        match longest {
            Some(n) => i += n,
            None => return false,
        }
    }
    true
}

pub fn classify(message: &str) -> Intent {
    let text = fold(message);
    let padded = format!(" {text} ");
    if HUMAN.iter().any(|p| padded.contains(&format!(" {p} "))) {
        return Intent::Human;
    }
    if only_phrases(&text, &[GOODBYES, THANKS]) && GOODBYES.iter().any(|g| text.contains(g)) {
        return Intent::Goodbye;
    }
    if only_phrases(&text, &[THANKS]) {
        return Intent::Thanks;
    }
    if only_phrases(&text, &[GREETINGS]) {
        return Intent::Greeting;
    }
    Intent::Question
}

/// Words that open a follow-up ("and for the Pro plan?", "what about Canada?").
const FOLLOW_UP_OPENERS: &[&str] = &[
    "and",
    "also",
    "what about",
    "how about",
    "same for",
    "what if",
    "et",
    "et pour",
    "et si",
    "aussi",
    "y",
    "y para",
    "und",
    "und fur",
    "e",
    "e per",
    "e para",
    "en",
];
/// Words that point back at something said before.
const BACK_REFERENCES: &[&str] = &[
    "it", "its", "that", "this", "they", "them", "those", "these", "there", "one", "ones", "ca",
    "cela", "celui", "celle", "ceux", "le", "la", "les", "eso", "esto", "ello", "es", "das",
    "dies", "dem", "esso", "quello", "isso", "isto",
];

/// Whether `question` needs the earlier turns to be understood: it opens like a follow-up,
/// or it is short and points back at something.
pub fn is_follow_up(question: &str, analyzer: &Analyzer) -> bool {
    let text = fold(question);
    let padded = format!("{text} ");
    if FOLLOW_UP_OPENERS
        .iter()
        .any(|o| padded.starts_with(&format!("{o} ")))
    {
        return true;
    }
    let content = analyzer.terms(question).len();
    let refers = text.split(' ').any(|w| BACK_REFERENCES.contains(&w));
    content <= 3 && refers
}

/// The rule-based rewrite: a follow-up is read together with the customer's previous
/// question, so retrieval sees both topics ("refund policy" + "and for the Pro plan?").
pub fn merge_follow_up(
    question: &str,
    previous_question: Option<&str>,
    analyzer: &Analyzer,
) -> String {
    match previous_question {
        Some(prev) if is_follow_up(question, analyzer) => format!("{prev} {question}"),
        _ => question.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_thanks_and_goodbyes_in_several_languages() {
        for g in [
            "Hi!",
            "hello there",
            "Bonjour",
            "¡Hola!",
            "Guten Tag",
            "good morning team",
        ] {
            assert_eq!(classify(g), Intent::Greeting, "{g}");
        }
        for t in [
            "Thanks!",
            "thank you so much",
            "Merci beaucoup",
            "gracias",
            "Danke schön",
        ] {
            assert_eq!(classify(t), Intent::Thanks, "{t}");
        }
        for b in ["bye", "Thanks, bye!", "Au revoir", "adiós"] {
            assert_eq!(classify(b), Intent::Goodbye, "{b}");
        }
        for q in [
            "hello, how do I get a refund?",
            "hi what are your opening hours",
            "Thanks, and how long does shipping take?",
        ] {
            assert_eq!(classify(q), Intent::Question, "{q}");
        }
    }

    #[test]
    fn requests_for_a_person_in_several_languages() {
        for h in [
            "I want to talk to a human",
            "Can I speak to someone please?",
            "je veux parler à un humain",
            "Je voudrais parler à quelqu’un",
            "quiero hablar con una persona",
            "Ich möchte mit einem Menschen sprechen",
            "vorrei parlare con un operatore",
            "quero falar com um atendente",
            "REAL PERSON",
        ] {
            assert_eq!(classify(h), Intent::Human, "{h}");
        }
        assert_eq!(classify("How do humans use the app?"), Intent::Question);
    }

    #[test]
    fn follow_ups_are_merged_with_the_previous_question() {
        let a = Analyzer::default();
        let prev = Some("What is the refund policy?");
        assert_eq!(
            merge_follow_up("And for the Pro plan?", prev, &a),
            "What is the refund policy? And for the Pro plan?"
        );
        assert_eq!(
            merge_follow_up("how long does it take?", prev, &a),
            "What is the refund policy? how long does it take?"
        );
        assert_eq!(
            merge_follow_up("How do I reset my password?", prev, &a),
            "How do I reset my password?",
            "a question that stands alone is kept"
        );
        assert_eq!(merge_follow_up("and for Pro?", None, &a), "and for Pro?");
    }
}
