"""The translation task's few-shot pairs for base-model prompts: eleven short, everyday English
sentences and their translations, one sentence a line.

Written for this project, never taken from an evaluation file (a test checks). Their varied shape
(questions, negation, past and future, names, "you") teaches a small base model the register far
better than three pairs did, and the prompt is evaluated once and then reused from the KV cache, so
more shots cost almost nothing per sentence.
"""

from __future__ import annotations


def _lines(block: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in block.strip().splitlines())


SHOT_SOURCES: tuple[str, ...] = _lines("""
The weather is nice today.
Where is the train station?
I read this book last year, and I liked it.
Tom didn't want to go to school today.
Can you help me carry these boxes?
She bought a new dress for the party.
I think it's going to rain tonight.
Where did you put my keys?
Mary is taller than her brother.
We were very happy to see them again.
The meeting will take place next Monday.
""")

SHOTS: dict[str, tuple[str, ...]] = {
    "fr": _lines("""
Il fait beau aujourd'hui.
Où est la gare ?
J'ai lu ce livre l'année dernière, et je l'ai aimé.
Tom ne voulait pas aller à l'école aujourd'hui.
Peux-tu m'aider à porter ces boîtes ?
Elle a acheté une nouvelle robe pour la fête.
Je pense qu'il va pleuvoir ce soir.
Où as-tu mis mes clés ?
Mary est plus grande que son frère.
Nous étions très contents de les revoir.
La réunion aura lieu lundi prochain.
"""),
    "de": _lines("""
Das Wetter ist heute schön.
Wo ist der Bahnhof?
Ich habe dieses Buch letztes Jahr gelesen, und es hat mir gefallen.
Tom wollte heute nicht zur Schule gehen.
Kannst du mir helfen, diese Kisten zu tragen?
Sie hat ein neues Kleid für die Party gekauft.
Ich glaube, es wird heute Abend regnen.
Wo hast du meine Schlüssel hingelegt?
Mary ist größer als ihr Bruder.
Wir haben uns sehr gefreut, sie wiederzusehen.
Die Sitzung findet nächsten Montag statt.
"""),
    "es": _lines("""
Hoy hace buen tiempo.
¿Dónde está la estación de tren?
Leí este libro el año pasado y me gustó.
Tom no quería ir a la escuela hoy.
¿Puedes ayudarme a llevar estas cajas?
Compró un vestido nuevo para la fiesta.
Creo que va a llover esta noche.
¿Dónde pusiste mis llaves?
Mary es más alta que su hermano.
Estábamos muy contentos de volver a verlos.
La reunión tendrá lugar el próximo lunes.
"""),
    "it": _lines("""
Oggi il tempo è bello.
Dov'è la stazione ferroviaria?
Ho letto questo libro l'anno scorso e mi è piaciuto.
Tom non voleva andare a scuola oggi.
Puoi aiutarmi a portare queste scatole?
Ha comprato un vestito nuovo per la festa.
Penso che stasera pioverà.
Dove hai messo le mie chiavi?
Mary è più alta di suo fratello.
Eravamo molto felici di rivederli.
La riunione si terrà lunedì prossimo.
"""),
    "pt": _lines("""
O tempo está bom hoje.
Onde fica a estação de trem?
Li este livro no ano passado e gostei dele.
Tom não queria ir à escola hoje.
Você pode me ajudar a carregar estas caixas?
Ela comprou um vestido novo para a festa.
Acho que vai chover hoje à noite.
Onde você colocou minhas chaves?
Mary é mais alta que o irmão.
Ficamos muito felizes em vê-los de novo.
A reunião vai acontecer na próxima segunda-feira.
"""),
    "nl": _lines("""
Het weer is mooi vandaag.
Waar is het treinstation?
Ik heb dit boek vorig jaar gelezen en ik vond het mooi.
Tom wilde vandaag niet naar school gaan.
Kun je me helpen deze dozen te dragen?
Ze heeft een nieuwe jurk gekocht voor het feest.
Ik denk dat het vanavond gaat regenen.
Waar heb je mijn sleutels gelegd?
Mary is langer dan haar broer.
We waren erg blij hen weer te zien.
De vergadering vindt volgende maandag plaats.
"""),
}
