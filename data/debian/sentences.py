"""The everyday sentences the speech synthesizers read, reviewed per language.

Twelve short sentences (greetings, thanks, time, weather, directions, numbers, a request,
a farewell), each with its English meaning, so a caption can say what is said ("a woman
saying 'Buenos días' in Spanish", "... (good morning)"). Translations are plain and neutral:
no form that depends on the speaker's gender (Portuguese "obrigado/obrigada", Russian
"хотел/хотела" are avoided), European Portuguese because espeak-ng's `pt` voice is.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Sentence:
    """One sentence: a short stable `topic` (used in clip keys), the English text and its translations."""

    topic: str
    english: str
    translations: MappingProxyType  # {language code: text}

    def text(self, language_code: str) -> str:
        """The sentence in `language_code` ("en" gives the English text)."""
        return self.english if language_code == "en" else self.translations[language_code]


def _sentence(topic: str, english: str, **translations: str) -> Sentence:
    return Sentence(topic, english, MappingProxyType(translations))


SENTENCES: tuple[Sentence, ...] = (
    _sentence(
        "good-morning",
        "Good morning.",
        es="Buenos días.",
        fr="Bonjour.",
        it="Buongiorno.",
        ru="Доброе утро.",
        de="Guten Morgen.",
        pt="Bom dia.",
        nl="Goedemorgen.",
        pl="Dzień dobry.",
        sv="God morgon.",
    ),
    _sentence(
        "how-are-you",
        "Hello, how are you?",
        es="Hola, ¿cómo estás?",
        fr="Salut, comment ça va ?",
        it="Ciao, come stai?",
        ru="Привет, как дела?",
        de="Hallo, wie geht es dir?",
        pt="Olá, como está?",
        nl="Hallo, hoe gaat het?",
        pl="Cześć, jak się masz?",
        sv="Hej, hur mår du?",
    ),
    _sentence(
        "thank-you",
        "Thank you very much.",
        es="Muchas gracias.",
        fr="Merci beaucoup.",
        it="Grazie mille.",
        ru="Большое спасибо.",
        de="Vielen Dank.",
        pt="Agradeço muito.",
        nl="Dank je wel.",
        pl="Dziękuję bardzo.",
        sv="Tack så mycket.",
    ),
    _sentence(
        "what-time",
        "What time is it?",
        es="¿Qué hora es?",
        fr="Quelle heure est-il ?",
        it="Che ore sono?",
        ru="Который час?",
        de="Wie spät ist es?",
        pt="Que horas são?",
        nl="Hoe laat is het?",
        pl="Która jest godzina?",
        sv="Vad är klockan?",
    ),
    _sentence(
        "raining",
        "It is raining today.",
        es="Hoy está lloviendo.",
        fr="Il pleut aujourd'hui.",
        it="Oggi piove.",
        ru="Сегодня идёт дождь.",
        de="Heute regnet es.",
        pt="Hoje está a chover.",
        nl="Het regent vandaag.",
        pl="Dzisiaj pada deszcz.",
        sv="Det regnar i dag.",
    ),
    _sentence(
        "sunny",
        "The weather is sunny and warm.",
        es="Hace sol y calor.",
        fr="Il fait beau et chaud.",
        it="C'è il sole e fa caldo.",
        ru="Солнечно и тепло.",
        de="Es ist sonnig und warm.",
        pt="O tempo está ensolarado e quente.",
        nl="Het is zonnig en warm.",
        pl="Jest słonecznie i ciepło.",
        sv="Det är soligt och varmt.",
    ),
    _sentence(
        "turn-left",
        "Turn left at the next street.",
        es="Gira a la izquierda en la próxima calle.",
        fr="Tournez à gauche à la prochaine rue.",
        it="Gira a sinistra alla prossima strada.",
        ru="Поверните налево на следующей улице.",
        de="Biegen Sie an der nächsten Straße links ab.",
        pt="Vire à esquerda na próxima rua.",
        nl="Sla bij de volgende straat linksaf.",
        pl="Proszę skręcić w lewo w następną ulicę.",
        sv="Sväng vänster vid nästa gata.",
    ),
    _sentence(
        "straight-ahead",
        "The station is straight ahead.",
        es="La estación está todo recto.",
        fr="La gare est tout droit.",
        it="La stazione è sempre dritto.",
        ru="Вокзал прямо впереди.",
        de="Der Bahnhof ist geradeaus.",
        pt="A estação é sempre em frente.",
        nl="Het station is rechtdoor.",
        pl="Dworzec jest na wprost.",
        sv="Stationen ligger rakt fram.",
    ),
    _sentence(
        "one-to-five",
        "One, two, three, four, five.",
        es="Uno, dos, tres, cuatro, cinco.",
        fr="Un, deux, trois, quatre, cinq.",
        it="Uno, due, tre, quattro, cinque.",
        ru="Один, два, три, четыре, пять.",
        de="Eins, zwei, drei, vier, fünf.",
        pt="Um, dois, três, quatro, cinco.",
        nl="Een, twee, drie, vier, vijf.",
        pl="Jeden, dwa, trzy, cztery, pięć.",
        sv="Ett, två, tre, fyra, fem.",
    ),
    _sentence(
        "coffee-please",
        "I would like a cup of coffee, please.",
        es="Quisiera una taza de café, por favor.",
        fr="Je voudrais une tasse de café, s'il vous plaît.",
        it="Vorrei una tazza di caffè, per favore.",
        ru="Можно мне чашку кофе, пожалуйста?",
        de="Ich hätte gern eine Tasse Kaffee, bitte.",
        pt="Queria uma chávena de café, por favor.",
        nl="Ik wil graag een kopje koffie, alstublieft.",
        pl="Poproszę filiżankę kawy.",
        sv="Jag skulle vilja ha en kopp kaffe, tack.",
    ),
    _sentence(
        "see-you-tomorrow",
        "See you tomorrow.",
        es="Hasta mañana.",
        fr="À demain.",
        it="A domani.",
        ru="До завтра.",
        de="Bis morgen.",
        pt="Até amanhã.",
        nl="Tot morgen.",
        pl="Do jutra.",
        sv="Vi ses i morgon.",
    ),
    _sentence(
        "bus-stop",
        "Where is the bus stop?",
        es="¿Dónde está la parada de autobús?",
        fr="Où est l'arrêt de bus ?",
        it="Dov'è la fermata dell'autobus?",
        ru="Где автобусная остановка?",
        de="Wo ist die Bushaltestelle?",
        pt="Onde fica a paragem de autocarro?",
        nl="Waar is de bushalte?",
        pl="Gdzie jest przystanek autobusowy?",
        sv="Var ligger busshållplatsen?",
    ),
)
