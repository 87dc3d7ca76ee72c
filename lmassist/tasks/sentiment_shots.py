"""The sentiment task's example reviews: the few-shot pool and the held-out calibration set.

All written for this project in the style of the one-sentence movie reviews of the sentence polarity
data (lower case, punctuation spaced); none is taken from an evaluation file (a test checks).
"""

from __future__ import annotations

# Mixed verdicts ("..., but ...") come first: real reviews hedge, and hedged shots measured better
# than clear-cut ones alone.
SHOTS: tuple[tuple[str, str], ...] = (
    ("while the acting is uneven , the film's warmth and humor win you over .", "positive"),
    ("it looks great , but the story never comes alive and the ending is a letdown .", "negative"),
    ("not a perfect movie , but a smart and surprisingly touching one .", "positive"),
    ("the cast tries hard , yet the script gives them nothing to do .", "negative"),
    ("a gorgeous , witty and deeply moving film that stays with you .", "positive"),
    ("the plot is a mess and the jokes fall flat .", "negative"),
    ("the performances are terrific , and the script is sharp and funny .", "positive"),
    ("a dull , lifeless exercise that wastes a fine cast .", "negative"),
    # Sixteen more, also hand-written; the pool alternates positive / negative throughout.
    ("the story is familiar , but the direction is so assured that it hardly matters .", "positive"),
    ("a tedious , overlong drama that mistakes gloom for depth .", "negative"),
    ("funny , smart and full of heart , this is the rare comedy that works for everyone .", "positive"),
    ("the premise is clever , but the execution is clumsy and the laughs are few .", "negative"),
    ("despite a slow start , the film builds to a genuinely thrilling finale .", "positive"),
    ("loud , frantic and utterly forgettable .", "negative"),
    ("it's messy and overlong , yet there is real charm in its characters .", "positive"),
    ("even the talented cast cannot rescue this limp , predictable thriller .", "negative"),
    ("an ambitious , beautifully shot epic with performances to match .", "positive"),
    ("it wants to be profound , but it only manages to be pretentious .", "negative"),
    ("a delightful surprise : clever , tender and never condescending .", "positive"),
    ("a handful of good scenes are buried under a pile of cliches .", "negative"),
    ("a quiet , thoughtful drama that earns every one of its tears .", "positive"),
    ("the dialogue is stiff , the pacing sluggish and the twist obvious from the start .", "negative"),
    ("the young lead gives a remarkable , fearless performance .", "positive"),
    ("sadly , the film never lives up to its promising first act .", "negative"),
)
NEUTRAL_SHOTS: tuple[tuple[str, str], ...] = (
    ("the film opens in theaters on friday and runs two hours .", "neutral"),
    ("the meeting is scheduled for tuesday at ten .", "neutral"),
)
CONTENT_FREE = ("N/A", "", "[MASK]")

# Forty more reviews, never shown to the model as shots: the "held-out" calibration scores them under
# each prompt and puts the decision threshold midway between the mean log-odds of the positive and
# of the negative ones. As shots they measured worse than the pool above, so they are kept for what
# they do well: estimating a prompt's lean on reviews with known labels.
HELD_OUT: tuple[tuple[str, str], ...] = (
    ('a small , scrappy film with more ideas than most summer blockbusters combined .', 'positive'),
    ('a slick but hollow thriller with nothing on its mind .', 'negative'),
    ("the film's final half hour is so gripping that you forgive its slow beginning .", 'positive'),
    ('the movie is so busy with its special effects that it forgets to tell a story .', 'negative'),
    ('an unpretentious , sweet-natured comedy that leaves you smiling .', 'positive'),
    ('an unfunny comedy that runs out of ideas in the first ten minutes .', 'negative'),
    ('the screenplay is full of sharp observations about family , love and regret .', 'positive'),
    ('the characters are thin , the dialogue is clunky and the ending makes no sense .', 'negative'),
    ("it's not groundbreaking , but it's a solid , well-made piece of entertainment .", 'positive'),
    ('it has its moments , but not nearly enough of them .', 'negative'),
    ('a haunting , beautifully acted portrait of grief .', 'positive'),
    ('a sentimental , heavy-handed drama that tells you exactly what to feel .', 'negative'),
    ('the director keeps the suspense taut and the surprises coming .', 'positive'),
    ('the director seems to have confused shaky camera work with style .', 'negative'),
    ('an intelligent thriller that respects its audience .', 'positive'),
    ('a sequel nobody asked for and few will remember .', 'negative'),
    ('rough around the edges , but bursting with energy and ideas .', 'positive'),
    ('well-meaning but hopelessly muddled .', 'negative'),
    ('the documentary is informative , moving and often very funny .', 'positive'),
    ('the film drags on for what feels like an eternity .', 'negative'),
    ('a rare sequel that is better than the original .', 'positive'),
    ("there's a good movie somewhere in here , but it never finds its way out .", 'negative'),
    ("you'll laugh , you'll cry , and you'll want to see it again .", 'positive'),
    ('a cynical cash grab dressed up as family entertainment .', 'negative'),
    ('it may be slight , but it is never less than charming .', 'positive'),
    ('the lead actor looks bored , and so will you .', 'negative'),
    ('a fresh and honest look at growing up .', 'positive'),
    ('a confused , incoherent mess that squanders an interesting premise .', 'negative'),
    ('the animation is dazzling and the story has real emotional weight .', 'positive'),
    ('the jokes are stale and the romance is lifeless .', 'negative'),
    ('a bold , provocative film that refuses easy answers .', 'positive'),
    ("it's the kind of movie that makes you check your watch every five minutes .", 'negative'),
    ('the two leads have wonderful chemistry .', 'positive'),
    ('pretty to look at , but empty at its core .', 'negative'),
    ('a smart , stylish caper that never takes itself too seriously .', 'positive'),
    ('a shrill , exhausting comedy that mistakes volume for wit .', 'negative'),
    ('its flaws are easy to overlook when the music is this good .', 'positive'),
    ('the violence is gratuitous and the story is paper-thin .', 'negative'),
    ('a lovely , low-key film about the friendships that shape us .', 'positive'),
    ('too long , too loud and too pleased with itself .', 'negative'),
)
