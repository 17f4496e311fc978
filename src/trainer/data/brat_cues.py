"""Word lists for reading brat attribution corpora (PolNeAR): which annotated cues relay a claim.

They are the defaults of `BratSource.excluded_cues` and `BratSource.extra_claim_cues`; a data config
can replace either list.
"""

# PolNeAR annotates thoughts and feelings as attributions too. A want, a like or a fear is not a
# claim relayed from a source, so these cues do not make a sentence attributed.
BRAT_NON_CLAIM_CUES = (
    r"wants?|wanted|wanting|wish(es|ed)?|hopes?|hoped|hoping|likes?|liked|loves?|loved|hates?|hated",
    r"fears?|feared|worr(y|ies|ied)|feels?|felt|enjoy(s|ed)?|prefers?|preferred|dislikes?",
    r"seems?|seemed|appears?|appeared|looks?|looked|sees?|saw|seen|watch(es|ed)?|hears?|heard",
    r"captured|erupt(s|ed)? from|is expected|are expected|was expected|knows?|knew|learned|realized",
)


# Annotated cues that relay a source's claim although the rule lexicon (which must avoid their
# other senses in free text) does not list them bare.
BRAT_EXTRA_CLAIM_CUES = (
    r"confirm(s|ed)?|report(s|ed)?|reveal(s|ed)?|discuss(es|ed)?|defend(s|ed)?|applaud(s|ed)?|credit(s|ed)?",
    r"threaten(s|ed)?|urg(e|es|ed|ing)|describ(e|es|ed|ing)|tout(s|ed)?|question(s|ed)?|mock(s|ed)?",
    r"slam(s|med)?|blast(s|ed)?|attack(s|ed)?|criticiz(e|es|ed|ing)|dismiss(es|ed)?|reject(s|ed)?|show(s|ed|n)?",
)
