"""The reviewed map from file (or preset) names of environmental packages to caption phrases.

Listen-free review: every sound name these packages ship was read, and a phrase written only
where the name says clearly what is heard ("Bark2.ogg" -> "a dog barking"); cryptic names, music
tracks, interface blips and sounds of fictional things (laser guns, aliens) are left out, each
with a short stable reason. Every phrase belongs to one canonical label of `LABELS`, shared
across packages where the sound is of the same kind, so a held-out package is scored with the
labels training saw. A label also fixes the clip's category (a few packages ship real
recordings of instruments) and its tags (the words a caption may add).

A table is a tuple of `(pattern, Phrase or skip reason)`; patterns are shell patterns matched
against the name as the package stores it, the first match decides, and each table ends with
a catch-all so that no name goes unreviewed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

# label -> (category, tags). Instrument labels also carry their General MIDI family and program.
LABELS: dict[str, tuple[str, tuple[str, ...]]] = {
    # animals
    "dog barking": ("environmental", ("animal", "dog", "domestic animal")),
    "animal growling": ("environmental", ("animal", "growl", "aggressive")),
    "cat meowing": ("environmental", ("animal", "cat", "domestic animal")),
    "cow mooing": ("environmental", ("animal", "cow", "farm")),
    "pig oinking": ("environmental", ("animal", "pig", "farm")),
    "sheep bleating": ("environmental", ("animal", "sheep", "farm")),
    "horse neighing": ("environmental", ("animal", "horse", "farm")),
    "horse galloping": ("environmental", ("animal", "horse", "hooves")),
    "chickens clucking": ("environmental", ("animal", "bird", "farm")),
    "duck quacking": ("environmental", ("animal", "bird", "farm")),
    "owl hooting": ("environmental", ("animal", "bird", "night")),
    "birds chirping": ("environmental", ("animal", "bird", "nature")),
    "lion roaring": ("environmental", ("animal", "wild animal", "roar")),
    "monkeys screeching": ("environmental", ("animal", "wild animal", "jungle")),
    "frogs croaking": ("environmental", ("animal", "frog", "pond")),
    "crickets chirping": ("environmental", ("animal", "insect", "night")),
    # nature and weather
    "rain": ("environmental", ("weather", "water", "nature")),
    "thunder": ("environmental", ("weather", "storm", "rumble")),
    "wind": ("environmental", ("weather", "air", "nature")),
    "sea waves": ("environmental", ("water", "sea", "nature")),
    "water flowing": ("environmental", ("water", "liquid", "stream")),
    "water splash": ("environmental", ("water", "liquid", "impact")),
    "water dripping": ("environmental", ("water", "liquid", "drops")),
    "bubbling": ("environmental", ("liquid", "bubbles")),
    "fire crackling": ("environmental", ("fire", "flames", "burning")),
    "steam hissing": ("environmental", ("steam", "hiss")),
    "rustling leaves": ("environmental", ("plants", "nature", "rustle")),
    "tree falling": ("environmental", ("wood", "tree", "crash")),
    # people
    "footsteps": ("environmental", ("walking", "steps", "person")),
    "applause": ("environmental", ("crowd", "clapping", "people")),
    "crowd": ("environmental", ("crowd", "people", "voices")),
    "laughing": ("environmental", ("people", "voice", "laughter")),
    "scream": ("environmental", ("person", "voice", "scream")),
    "cry of pain": ("environmental", ("person", "voice", "pain")),
    "breathing": ("environmental", ("person", "breath", "air")),
    "heartbeat": ("environmental", ("body", "heart", "rhythm")),
    "punch": ("environmental", ("fight", "hit", "impact")),
    "eating": ("environmental", ("person", "mouth", "food")),
    # impacts and objects
    "explosion": ("environmental", ("blast", "boom", "loud")),
    "gunfire": ("environmental", ("gun", "weapon", "shot")),
    "gun reloading": ("environmental", ("gun", "weapon", "mechanical")),
    "bullet impact": ("environmental", ("gun", "weapon", "impact")),
    "whoosh": ("environmental", ("swing", "air", "fast")),
    "glass breaking": ("environmental", ("glass", "shatter", "impact")),
    "wood breaking": ("environmental", ("wood", "crack", "impact")),
    "metal clanging": ("environmental", ("metal", "clang", "impact")),
    "thud": ("environmental", ("impact", "heavy", "fall")),
    "crash": ("environmental", ("impact", "collision", "loud")),
    "door": ("environmental", ("door", "house", "hinge")),
    "knock": ("environmental", ("knock", "wood", "door")),
    "creak": ("environmental", ("wood", "creak", "strain")),
    "chest lid": ("environmental", ("wood", "box", "lid")),
    "click": ("environmental", ("click", "short", "mechanical")),
    "beep": ("environmental", ("electronic", "tone", "short")),
    "morse code": ("environmental", ("electronic", "tone", "signal")),
    "alarm": ("environmental", ("alarm", "warning", "signal")),
    "siren": ("environmental", ("alarm", "warning", "emergency")),
    "telephone ringing": ("environmental", ("telephone", "ring", "signal")),
    "bell": ("environmental", ("bell", "ringing", "signal")),
    "gong": ("environmental", ("metal", "gong", "resonant")),
    "wind chimes": ("environmental", ("chimes", "metal", "wind")),
    "cash register": ("environmental", ("shop", "money", "bell")),
    "rubbing": ("environmental", ("friction", "paper", "rub")),
    # tools and machines
    "machinery": ("environmental", ("machine", "industrial", "mechanical")),
    "electric hum": ("environmental", ("electric", "hum", "drone")),
    "electric sparks": ("environmental", ("electric", "sparks", "crackle")),
    "static noise": ("environmental", ("electronic", "noise", "hiss")),
    "chainsaw": ("environmental", ("tool", "saw", "motor")),
    "saw": ("environmental", ("tool", "saw", "cutting")),
    "jackhammer": ("environmental", ("tool", "construction", "pounding")),
    "hammering": ("environmental", ("tool", "metal", "blows")),
    "pickaxe": ("environmental", ("tool", "stone", "digging")),
    "chopping wood": ("environmental", ("tool", "wood", "axe")),
    "digging": ("environmental", ("tool", "earth", "shovel")),
    "fuse burning": ("environmental", ("fire", "fuse", "fizz")),
    "flint and steel": ("environmental", ("fire", "spark", "strike")),
    "factory whistle": ("environmental", ("whistle", "steam", "industrial")),
    # vehicles
    "engine": ("environmental", ("vehicle", "motor", "engine")),
    "car horn": ("environmental", ("vehicle", "horn", "road")),
    "car passing": ("environmental", ("vehicle", "road", "passing")),
    "traffic": ("environmental", ("vehicle", "road", "city")),
    "tyre screech": ("environmental", ("vehicle", "tyres", "skid")),
    "train": ("environmental", ("vehicle", "railway", "train")),
    "rolling cart": ("environmental", ("vehicle", "rails", "wheels")),
    "ship horn": ("environmental", ("vehicle", "ship", "horn")),
    "airplane": ("environmental", ("vehicle", "aircraft", "flight")),
    "helicopter": ("environmental", ("vehicle", "aircraft", "rotor")),
    "rocket launch": ("environmental", ("rocket", "launch", "roar")),
    # real recordings of instruments (gcompris-qt-data): label = instrument name
    "violin": ("instrument", ("strings",)),
    "cello": ("instrument", ("strings",)),
    "orchestral harp": ("instrument", ("strings",)),
    "timpani": ("instrument", ("strings",)),
    "acoustic grand piano": ("instrument", ("piano",)),
    "organ": ("instrument", ("organ",)),
    "accordion": ("instrument", ("organ",)),
    "harmonica": ("instrument", ("organ",)),
    "guitar": ("instrument", ("guitar",)),
    "electric guitar": ("instrument", ("guitar",)),
    "banjo": ("instrument", ("ethnic",)),
    "trumpet": ("instrument", ("brass",)),
    "trombone": ("instrument", ("brass",)),
    "tuba": ("instrument", ("brass",)),
    "french horn": ("instrument", ("brass",)),
    "saxophone": ("instrument", ("reed",)),
    "clarinet": ("instrument", ("reed",)),
    "flute": ("instrument", ("pipe",)),
    "xylophone": ("instrument", ("chromatic percussion",)),
    "snare drum": ("drums", ("drum",)),
    "drum kit": ("drums", ("drum",)),
    "bongo": ("drums", ("drum",)),
    "cymbal": ("drums", ("cymbal",)),
    "tambourine": ("drums", ("percussion",)),
    "maracas": ("drums", ("percussion",)),
    "castanets": ("drums", ("percussion",)),
    "triangle": ("drums", ("percussion",)),
}

# The General MIDI program of the instrument labels that are GM program names (the soundfont
# sources' labels, `soundfonts.GM_PROGRAMS`), so held-out recordings share their labels; "guitar",
# "electric guitar", "organ" and "saxophone" do not say which GM program they are.
GM_PROGRAMS = {
    "acoustic grand piano": 0, "xylophone": 13, "accordion": 21, "harmonica": 22, "violin": 40,
    "cello": 42, "orchestral harp": 46, "timpani": 47, "trumpet": 56, "trombone": 57, "tuba": 58,
    "french horn": 60, "clarinet": 71, "flute": 73, "banjo": 105,
}  # fmt: skip

# Skip reasons (stable strings: corpus.json counts them).
MUSIC = "music track"
CRYPTIC = "cryptic name"
AMBIGUOUS = "name does not say what is heard"
INTERFACE = "user-interface sound"
FICTIONAL = "sound of a fictional thing"
VOICE = "game character voice"
CARTOON = "cartoon effect"
EMPTY = "empty placeholder"


@dataclass(frozen=True)
class Phrase:
    """A reviewed caption phrase ("a dog barking"), its canonical label and any extra tags."""

    phrase: str
    label: str
    extra_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"{self.phrase!r}: {self.label!r} is not a canonical label")

    @property
    def category(self) -> str:
        return LABELS[self.label][0]

    @property
    def tags(self) -> list[str]:
        """The label's tags, then the phrase's own (material, place), without repeats."""
        return list(dict.fromkeys(LABELS[self.label][1] + self.extra_tags))


Review = Phrase | str  # a phrase, or the reason the sound is left out
P = Phrase


def review(table: tuple[tuple[str, Review], ...], name: str) -> Review:
    """The first entry of `table` whose pattern matches `name`."""
    for pattern, verdict in table:
        if fnmatchcase(name, pattern):
            return verdict
    raise LookupError(f"{name!r} is not reviewed (the table has no catch-all)")


def _footsteps(materials: tuple[str, ...], pattern: str) -> tuple[tuple[str, Review], ...]:
    return tuple(
        (pattern.format(m=material), P(f"footsteps on {material}", "footsteps", (material,)))
        for material in materials
    )


# ufoai-sound: members of base/0snd.pk3 below "sound/".
UFOAI: tuple[tuple[str, Review], ...] = (
    ("aliens/*", FICTIONAL),
    ("ambience/alien*", FICTIONAL),
    ("ambience/engine_alien*", FICTIONAL),
    ("ambience/bloodspiderwalk.ogg", FICTIONAL),
    ("ambience/ufo_night_atm.ogg", FICTIONAL),
    ("ambience/arcticwind.ogg", P("a howling arctic wind", "wind", ("cold",))),
    ("ambience/creak.ogg", P("a wooden creak", "creak")),
    ("ambience/cricket_loop.ogg", P("crickets chirping", "crickets chirping")),
    ("ambience/disco.ogg", MUSIC),
    ("ambience/jingle*.ogg", MUSIC),
    ("ambience/fire*.ogg", P("a fire crackling", "fire crackling")),
    ("ambience/smallfire.ogg", P("a small fire crackling", "fire crackling")),
    ("ambience/hum*.ogg", P("an electrical hum", "electric hum")),
    ("ambience/machine1.ogg", P("machinery running", "machinery")),
    ("ambience/minepump03.ogg", P("a mine pump running", "machinery", ("pump",))),
    ("ambience/wind_turbine.ogg", P("a wind turbine whirring", "machinery", ("turbine",))),
    ("ambience/sparks*.ogg", P("electric sparks crackling", "electric sparks")),
    ("ambience/steam.ogg", P("hissing steam", "steam hissing")),
    ("ambience/thunder*.ogg", P("thunder rumbling", "thunder")),
    ("ambience/tv_static.ogg", P("television static", "static noise", ("television",))),
    ("ambience/waterfontain.ogg", P("a water fountain splashing", "water flowing", ("fountain",))),
    ("ambience/water*.ogg", P("running water", "water flowing")),
    ("ambience/*", AMBIGUOUS),  # city_abnd_ufoai_atm, droning_*, lights_loop, radiomessage...
    ("civilians/civfem*.ogg", P("a woman screaming", "scream", ("woman",))),
    ("civilians/civmaledeath*.ogg", P("a man's dying scream", "scream", ("man",))),
    ("civilians/maledeath*.ogg", P("a man's dying scream", "scream", ("man",))),
    ("civilians/*malehurt*.ogg", P("a man crying out in pain", "cry of pain", ("man",))),
    ("soldiers/femaledeath*.ogg", P("a woman's dying scream", "scream", ("woman",))),
    ("soldiers/femalehurt*.ogg", P("a woman crying out in pain", "cry of pain", ("woman",))),
    ("soldiers/maledeath*.ogg", P("a man's dying scream", "scream", ("man",))),
    ("soldiers/malehurt*.ogg", P("a man crying out in pain", "cry of pain", ("man",))),
    ("doors/creak*.ogg", P("a door creaking", "door", ("creak",))),
    ("doors/door*-open.ogg", P("a door opening", "door")),
    ("doors/door*-close.ogg", P("a door closing", "door")),
    ("doors/open_close.ogg", P("a door opening and closing", "door")),
    *_footsteps(
        ("carpet", "dirt", "grass", "gravel", "metal", "sand", "snow", "stone", "tile", "wood"),
        "footsteps/{m}*.ogg",
    ),
    ("footsteps/linoleum.ogg", P("footsteps on linoleum", "footsteps", ("linoleum",))),
    ("footsteps/splash*.ogg", P("footsteps splashing through water", "footsteps", ("water",))),
    ("footsteps/*", AMBIGUOUS),  # crouch, stand, hitground*, water_in/out/under
    ("geoscape/combat-explosion.ogg", P("an explosion", "explosion")),
    ("geoscape/combat-rocket-exp.ogg", P("a rocket exploding", "explosion", ("rocket",))),
    ("geoscape/combat-gun.ogg", P("gunfire", "gunfire")),
    ("geoscape/combat-rocket.ogg", P("a rocket being launched", "rocket launch")),
    ("geoscape/combat-air*", FICTIONAL),
    ("geoscape/*", INTERFACE),
    ("impact/bullet-impact.ogg", P("a bullet hitting a hard surface", "bullet impact")),
    ("impact/bullet-bodyimpact.ogg", P("a bullet hitting a body", "bullet impact")),
    ("impact/water-impact.ogg", P("an object splashing into water", "water splash")),
    ("impact/waterbullet-impact.ogg", P("a bullet splashing into water", "water splash")),
    ("impact/*", FICTIONAL),  # knife/laser/nail/plasma impacts of the game's weapons
    ("misc/breakglass*.ogg", P("glass shattering", "glass breaking")),
    ("misc/breakmetal*.ogg", P("metal breaking with a clang", "metal clanging")),
    ("misc/breakwood*.ogg", P("wood splintering", "wood breaking")),
    ("misc/breakelectric*.ogg", P("an electric device breaking in sparks", "electric sparks")),
    ("misc/*", INTERFACE),  # electro, lobbyprivmsg, popup, roundstart, talk
    ("seq/humanflyby.ogg", P("an aircraft flying past", "airplane")),
    ("seq/sword-fly.ogg", P("a sword whooshing through the air", "whoosh", ("sword",))),
    ("seq/*", FICTIONAL),
    ("ugv/diesel-idle.ogg", P("a diesel engine idling", "engine", ("diesel",))),
    ("ugv/diesel-move.ogg", P("a diesel vehicle driving", "engine", ("diesel",))),
    ("ugv/diesel-stop.ogg", P("a diesel engine shutting down", "engine", ("diesel",))),
    ("ugv/*", FICTIONAL),  # hover drives
    ("ui/beep*.ogg", P("a short electronic beep", "beep")),
    ("ui/click*.ogg", P("a click", "click")),
    ("ui/*", INTERFACE),
    ("weapons/bullet-pistol*.ogg", P("a pistol shot", "gunfire", ("pistol",))),
    ("weapons/bullet-rifle.ogg", P("a rifle shot", "gunfire", ("rifle",))),
    ("weapons/bullet-rifle-1x.ogg", P("a rifle shot", "gunfire", ("rifle",))),
    ("weapons/bullet-rifle-*.ogg", P("a burst of rifle fire", "gunfire", ("rifle",))),
    ("weapons/bullet-smg*.ogg", P("submachine gun fire", "gunfire", ("submachine gun",))),
    ("weapons/bullet-sniper.ogg", P("a sniper rifle shot", "gunfire", ("rifle",))),
    ("weapons/bullet-shotgun*.ogg", P("a shotgun blast", "gunfire", ("shotgun",))),
    ("weapons/bullet-chaingun*.ogg", P("a chain gun firing", "gunfire", ("machine gun",))),
    ("weapons/bullet-hmg*.ogg", P("a heavy machine gun firing", "gunfire", ("machine gun",))),
    ("weapons/explosion-flashbang.ogg", P("a flashbang going off", "explosion", ("grenade",))),
    ("weapons/explosion-grenade.ogg", P("a grenade exploding", "explosion", ("grenade",))),
    ("weapons/explosion-rocket.ogg", P("a rocket exploding", "explosion", ("rocket",))),
    ("weapons/explosion-fire.ogg", P("a fiery explosion", "explosion", ("fire",))),
    ("weapons/explosion.ogg", P("an explosion", "explosion")),
    ("weapons/flamer-*.ogg", P("a flamethrower roaring", "fire crackling", ("flamethrower",))),
    ("weapons/grenade-launcher*.ogg", P("a grenade launcher firing", "gunfire", ("grenade",))),
    ("weapons/melee-*.ogg", P("a whoosh of a swung weapon", "whoosh")),
    ("weapons/reload-laser.ogg", FICTIONAL),
    ("weapons/reload-nail.ogg", FICTIONAL),
    ("weapons/reload-*.ogg", P("a gun being reloaded", "gun reloading")),
    ("weapons/rocket-human.ogg", P("a rocket launcher firing", "rocket launch")),
    ("weapons/ugv-cannon-fire.ogg", P("a cannon firing", "gunfire", ("cannon",))),
    ("weapons/*", FICTIONAL),  # bolter, gauss, needler, laser, plasma, psi...
    ("*", CRYPTIC),
)

# openttd-opensfx: the title OpenSFX gives each sample of opensfx.cat (its quoted first words).
OPENTTD: tuple[tuple[str, Review], ...] = (
    ("Good Year", MUSIC),
    ("Bad Year", MUSIC),
    ("Unused/Nothing*", EMPTY),
    ("Toyland: Propeller plane take off", P("a propeller plane taking off", "airplane")),
    ("Toyland: *", CARTOON),
    ("Splat *", AMBIGUOUS),
    ("Factory Whistle", P("a factory steam whistle", "factory whistle")),
    ("Steam train station departure", P("a steam train whistling as it departs", "train")),
    ("Steam engine going in tunnel", P("a steam train whistling into a tunnel", "train")),
    ("Diesel/electric train station departure", P("a train horn as a train departs", "train")),
    ("Maglev train station departure", P("a maglev train departing", "train")),
    ("Monorail train station departure", P("a monorail train passing", "train")),
    ("Ship horn", P("a ship's horn", "ship horn")),
    ("Ferry horn", P("a ferry's horn", "ship horn")),
    ("Propeller plane start", P("a propeller plane starting up", "airplane")),
    ("Early jet take off", P("a jet airliner taking off", "airplane", ("jet",))),
    ("Mach 1+ Jet take off", P("a fighter jet taking off", "airplane", ("jet",))),
    ("Modern jet take off", P("a jet taking off", "airplane", ("jet",))),
    ("Plane wheels touching ground", P("a plane's tyres screeching on landing", "tyre screech")),
    ("Helicopter", P("a helicopter", "helicopter")),
    ("Mining machinery", P("mining machinery", "machinery")),
    ("Electric sparking", P("electric sparks crackling", "electric sparks")),
    ("Steam (of steam engine)", P("steam hissing from a steam engine", "steam hissing")),
    ("Level crossing", P("the bell of a railway level crossing", "bell", ("railway",))),
    ("Crash", P("a crash", "crash")),
    ("Big crash", P("a big crash", "crash")),
    ("Explosion", P("an explosion", "explosion")),
    ("Cash till", P("a cash register", "cash register")),
    ("Beep", P("a short electronic beep", "beep")),
    ("Morse", P("morse code beeping", "morse code")),
    ("Truck/old bus start, pull away", P("a truck starting and pulling away", "engine")),
    ("Truck/old bus start, pull away with horn", P("a truck honking and pulling away", "engine")),
    ("Modern bus start", P("a bus pulling away", "engine", ("bus",))),
    ("Old bus start", P("an old bus starting", "engine", ("bus",))),
    ("Modern car horn", P("a car horn honking", "car horn")),
    ("Applause", P("an audience applauding", "applause")),
    ("Oooh sound", P("a crowd going 'oooh'", "crowd")),
    ("Jackhammer", P("a jackhammer", "jackhammer")),
    ("Sheep", P("sheep bleating", "sheep bleating")),
    ("Cow", P("a cow mooing", "cow mooing")),
    ("Horse", P("a horse neighing", "horse neighing")),
    ("Building bridge", P("hammering on metal in a smithy", "hammering")),
    ("Sawmill", P("a circular saw cutting wood", "saw")),
    ("Wind", P("wind blowing", "wind")),
    ("Heavy wind", P("a strong wind blowing", "wind")),
    ("Lumber mill: Crashing tree", P("a tree crashing to the ground", "tree falling")),
    ("Lumber mill: Falling tree", P("a tree being felled", "tree falling")),
    ("Lumber mill: Chainsaw", P("a chainsaw", "chainsaw")),
    ("Tropical: Bird (*)", P("a tropical bird calling", "birds chirping")),
    ("Tropical: Lion roar", P("a lion roaring", "lion roaring")),
    ("Tropical: Monkeys", P("monkeys screeching", "monkeys screeching")),
    ("*", AMBIGUOUS),  # "Road vehicle breakdown", "Train/ship breakdown"
)

# lincity-ng-data: files of games/lincity-ng/ (sounds/*.wav, music/*.ogg).
LINCITY: tuple[tuple[str, Review], ...] = (
    ("music/*", MUSIC),
    ("sounds/Blacksmith*.wav", P("a blacksmith hammering on an anvil", "hammering")),
    ("sounds/Click.wav", P("a click", "click")),
    ("sounds/Fire[0-9].wav", P("a fire crackling", "fire crackling")),
    ("sounds/FireWasteland*.wav", P("a fire crackling", "fire crackling")),
    ("sounds/PowerLine*.wav", P("power lines humming", "electric hum")),
    ("sounds/RailTrain*.wav", P("a train passing", "train")),
    ("sounds/RocketExplosion*.wav", P("a rocket exploding", "explosion", ("rocket",))),
    ("sounds/RocketTakeoff*.wav", P("a rocket taking off", "rocket launch")),
    ("sounds/SportsCroud*.wav", P("a sports crowd cheering", "crowd", ("cheering",))),
    ("sounds/TraficHigh*.wav", P("heavy road traffic", "traffic")),
    ("sounds/TraficLow*.wav", P("light road traffic", "traffic")),
    ("sounds/Window*.wav", INTERFACE),
    ("*", AMBIGUOUS),  # the ambience of each building type: Farm1, School2, Shanty3...
)

# lugaru-data: files of games/lugaru/Sounds/.
LUGARU: tuple[tuple[str, Review], ...] = (
    ("Music*", MUSIC),
    ("Rabbit*", VOICE),
    ("Console*", INTERFACE),
    ("Alarm.ogg", P("an alarm", "alarm")),
    ("BarkGrowl.ogg", P("a dog barking and growling", "dog barking")),
    ("Bark*.ogg", P("a dog barking", "dog barking")),
    ("BushRustle.ogg", P("a bush rustling", "rustling leaves")),
    ("Clank*.ogg", P("metal clanking", "metal clanging")),
    ("MetalHit.ogg", P("a metal hit", "metal clanging")),
    ("FireStart.ogg", P("a fire flaring up", "fire crackling")),
    ("FireEnd.ogg", P("a fire dying out", "fire crackling")),
    ("Fire.ogg", P("a fire crackling", "fire crackling")),
    *_footsteps(("grass", "snow", "stone"), "FootStep{m}*.ogg"),
    ("Growl*.ogg", P("an animal growling", "animal growling")),
    ("Snarl*.ogg", P("an animal snarling", "animal growling")),
    ("Hawk.ogg", P("a hawk screeching", "birds chirping", ("hawk",))),
    ("HeavyImpact.ogg", P("a heavy impact", "thud")),
    ("Land*.ogg", P("landing on the ground with a thud", "thud")),
    ("Thud.ogg", P("a thud", "thud")),
    ("StaffBreak.ogg", P("a wooden staff snapping", "wood breaking")),
    ("*Whoosh.ogg", P("a whoosh", "whoosh")),
    ("KnifeSwish.ogg", P("a knife swishing through the air", "whoosh", ("knife",))),
    ("Wind.ogg", P("wind blowing", "wind")),
    ("*", AMBIGUOUS),  # combat effects (FleshStab, SwordStaff...), Break, Jump, Skid...
)

# minetest-data: files of games/minetest/games/ (the mod's sounds/ folders).
MINETEST: tuple[tuple[str, Review], ...] = (
    ("devtest/*", AMBIGUOUS),  # a test tone
    ("*/carts_cart_moving*", P("a mine cart rolling on rails", "rolling cart")),
    ("*/default_break_glass*", P("glass shattering", "glass breaking")),
    ("*/default_chest_open*", P("a wooden chest opening", "chest lid")),
    ("*/default_chest_close*", P("a wooden chest closing", "chest lid")),
    ("*/default_cool_lava*", P("lava hissing as it cools", "steam hissing", ("lava",))),
    ("*/default_dig_choppy*", P("chopping wood", "chopping wood")),
    ("*/default_dig_cracky*", P("a pickaxe striking stone", "pickaxe")),
    ("*/default_dig_crumbly*", P("digging into dirt", "digging", ("dirt",))),
    ("*/default_gravel_di[gu]*", P("digging in gravel", "digging", ("gravel",))),
    ("*/default_furnace_active*", P("a furnace fire burning", "fire crackling", ("furnace",))),
    *_footsteps(
        ("dirt", "glass", "grass", "gravel", "ice", "metal", "sand", "snow", "wood"),
        "*/default_{m}_footstep*",
    ),
    ("*/default_hard_footstep*", P("footsteps on a hard floor", "footsteps")),
    ("*/default_water_footstep*", P("footsteps splashing through water", "footsteps", ("water",))),
    ("*/doors_fencegate_*", P("a wooden gate swinging", "door", ("gate",))),
    ("*/doors_glass_door_open*", P("a glass door opening", "door", ("glass",))),
    ("*/doors_glass_door_close*", P("a glass door closing", "door", ("glass",))),
    ("*/doors_steel_door_open*", P("a steel door opening", "door", ("steel",))),
    ("*/doors_steel_door_close*", P("a steel door closing", "door", ("steel",))),
    ("*/doors_door_open*", P("a door opening", "door")),
    ("*/doors_door_close*", P("a door closing", "door")),
    ("*/xpanes_steel_bar_door_*", P("a steel barred door swinging", "door", ("steel",))),
    ("*/env_sounds_lava*", P("lava bubbling", "bubbling", ("lava",))),
    ("*/env_sounds_water*", P("flowing water", "water flowing")),
    ("*/fire_extinguish_flame*", P("a flame hissing out", "steam hissing", ("fire",))),
    ("*/fire_flint_and_steel*", P("striking flint and steel", "flint and steel")),
    ("*/fire_*", P("a fire crackling", "fire crackling")),
    ("*/tnt_explode*", P("an explosion", "explosion")),
    ("*/tnt_gunpowder_burning*", P("a fuse fizzing", "fuse burning")),
    ("*/tnt_ignite*", P("a fuse being lit", "fuse burning")),
    ("*", AMBIGUOUS),  # dug_node, place_node, tool_breaks, player_damage, dig_snappy...
)

# gcompris-qt-data: resource paths inside its .rcc files, below "gcompris/src/".
_G = "activities/"
_M = "activities/memory-sound/*/"
_INSTRUMENT_FILES = (
    "accordion", "banjo", "bongo", "castanets", "cello", "clarinet", "cymbal", "guitar",
    "harmonica", "organ", "saxophone", "tambourine", "timpani", "triangle", "trombone", "trumpet",
    "tuba", "violin",
)  # fmt: skip
GCOMPRIS: tuple[tuple[str, Review], ...] = (
    (f"{_G}explore_world_music/*", MUSIC),
    ("core/resource/intro.ogg", MUSIC),
    (f"{_G}explore_farm_animals/*/owl.ogg", P("an owl hooting", "owl hooting")),
    (f"{_G}explore_farm_animals/*/pig.ogg", P("a pig oinking", "pig oinking")),
    (f"{_G}explore_farm_animals/*/chickens.ogg", P("chickens clucking", "chickens clucking")),
    (f"{_G}explore_farm_animals/*/cat.ogg", P("a cat meowing", "cat meowing")),
    (f"{_G}explore_farm_animals/*/horse.ogg", P("a horse neighing", "horse neighing")),
    (f"{_G}explore_farm_animals/*/cow.ogg", P("a cow mooing", "cow mooing")),
    (f"{_G}explore_farm_animals/*/dog.ogg", P("a dog barking", "dog barking")),
    (f"{_G}explore_farm_animals/*/duck.ogg", P("a duck quacking", "duck quacking")),
    (f"{_G}explore_farm_animals/*/sheep.ogg", P("sheep bleating", "sheep bleating")),
    (f"{_G}instruments/*/drum_kit.ogg", P("a drum kit playing", "drum kit")),
    (f"{_G}instruments/*/snare_drum.ogg", P("a snare drum", "snare drum")),
    (f"{_G}instruments/*/electric_guitar.ogg", P("an electric guitar", "electric guitar")),
    (f"{_G}instruments/*/flute_traversiere.ogg", P("a flute", "flute")),
    (f"{_G}instruments/*/horn.ogg", P("a French horn", "french horn")),
    (f"{_G}instruments/*/harp.ogg", P("a harp", "orchestral harp")),
    (f"{_G}instruments/*/piano.ogg", P("a piano", "acoustic grand piano")),
    *(
        (f"{_G}instruments/*/{name}.ogg", P(f"{'an' if name[0] in 'aeiou' else 'a'} {name}", name))
        for name in _INSTRUMENT_FILES
    ),
    (f"{_G}instruments/*/maracas.ogg", P("maracas", "maracas")),
    (f"{_G}melody/*/xylofon_son*.wav", P("a xylophone note", "xylophone")),
    (f"{_G}melody/*/knock.wav", P("a knock on a door", "knock")),
    (f"{_M}guitar_son*.ogg", P("a guitar note", "guitar")),
    (f"{_M}guitar_melody.ogg", P("a guitar melody", "guitar")),
    (f"{_M}LRStartAndStopCarEngine*", P("a car engine starting and stopping", "engine")),
    (f"{_M}LRObject_falling*", P("an object falling to the ground", "thud")),
    (f"{_M}LRBuddhist_gong*", P("a Buddhist gong", "gong")),
    (f"{_M}LRFactory_noise*", P("factory noise", "machinery", ("factory",))),
    (f"{_M}LRDoor_Open*", P("a door opening", "door")),
    (f"{_M}LRTrain_slowing_down*", P("a train slowing down", "train")),
    (f"{_M}LRBark*", P("a dog barking", "dog barking")),
    (f"{_M}LRApplauses*", P("people applauding", "applause")),
    (f"{_M}LRHeart_beat*", P("a heartbeat", "heartbeat")),
    (
        f"{_M}LRFrogsInPondDuringStorm*",
        P("frogs croaking in a pond during a storm", "frogs croaking", ("storm",)),
    ),
    (f"{_M}LRRain_in_garden*", P("rain falling in a garden", "rain", ("garden",))),
    (f"{_G}canal_lock/*/door_open.wav", P("a canal lock gate opening", "door", ("canal lock",))),
    (f"{_G}canal_lock/*/door_close.wav", P("a canal lock gate closing", "door", ("canal lock",))),
    (f"{_G}canal_lock/*/water_fill.wav", P("water filling a canal lock", "water flowing")),
    (f"{_G}clickgame/*/drip.wav", P("a water drip", "water dripping")),
    (f"{_G}*/bubble.wav", P("bubbles", "bubbling")),
    ("core/resource/sounds/crash.wav", P("a crash", "crash")),
    ("core/resource/sounds/bleep.wav", P("a short electronic beep", "beep")),
    ("core/resource/*", INTERFACE),  # bonus, win, flip, scroll, smudge, audioclick...
    (f"{_G}*/eraser*.wav", P("an eraser rubbing on paper", "rubbing", ("eraser",))),
    (f"{_G}gnumch-equality/*/eat.wav", P("munching", "eating")),
    (f"{_G}guessnumber/*/helicopter.wav", P("a helicopter", "helicopter")),
    (f"{_G}mining/*/pickaxe.wav", P("a pickaxe striking rock", "pickaxe")),
    (f"{_G}morse_code/*/silence.wav", EMPTY),
    (f"{_G}morse_code/*/dash.wav", P("a morse code dash", "morse code")),
    (f"{_G}morse_code/*/dot.wav", P("a morse code dot", "morse code")),
    (f"{_G}*/click.wav", P("a click", "click")),
    (f"{_G}railroad/*/train.wav", P("a train", "train")),
    (f"{_G}reversecount/*/icy_walk.wav", P("footsteps on ice", "footsteps", ("ice",))),
    (f"{_G}scalesboard/*/metal_hit.wav", P("a metal hit", "metal clanging")),
    (f"{_G}traffic/*/car.wav", P("a car engine", "engine", ("car",))),
    (f"{_G}chronos/*", CRYPTIC),
    (f"{_M}LRWeird*", CRYPTIC),
    ("*", AMBIGUOUS),  # slide, drop, money1, harbor2, apert, LRRing, LRHits, card_flip...
)

# csound-soundfont: the General MIDI / GS sound-effect presets of sf_GMbank.sf2, "bank:program".
CSOUND: tuple[tuple[str, Review], ...] = (
    ("0:121", P("breath noise", "breathing")),
    ("0:122", P("waves on a seashore", "sea waves")),
    ("0:123", P("birds chirping", "birds chirping")),
    ("0:124", P("a telephone ringing", "telephone ringing")),
    ("0:125", P("a helicopter", "helicopter")),
    ("0:126", P("applause", "applause")),
    ("0:127", P("a gunshot", "gunfire")),
    ("1:122", P("rain", "rain")),
    ("1:123", P("a dog barking", "dog barking")),
    ("1:124", P("a telephone ringing", "telephone ringing")),
    ("1:125", P("a car engine", "engine", ("car",))),
    ("1:126", P("people laughing", "laughing")),
    ("1:127", P("machine gun fire", "gunfire", ("machine gun",))),
    ("2:122", P("thunder", "thunder")),
    ("2:123", P("a horse galloping", "horse galloping")),
    ("2:124", P("a door creaking", "door", ("creak",))),
    ("2:125", P("a car braking to a stop", "tyre screech", ("car",))),
    ("2:126", P("a person screaming", "scream")),
    ("3:122", P("wind blowing", "wind")),
    ("3:123", P("a bird singing", "birds chirping")),
    ("3:124", P("a door slamming", "door")),
    ("3:125", P("a car passing by", "car passing")),
    ("3:126", P("a punch", "punch")),
    ("3:127", P("an explosion", "explosion")),
    ("4:122", P("a flowing stream", "water flowing", ("stream",))),
    ("4:125", P("a car crash", "crash", ("car",))),
    ("4:126", P("a heartbeat", "heartbeat")),
    ("5:122", P("bubbles", "bubbling")),
    ("5:124", P("wind chimes", "wind chimes")),
    ("5:125", P("a siren wailing", "siren")),
    ("5:126", P("footsteps", "footsteps")),
    ("6:125", P("a train", "train")),
    ("7:125", P("a jet plane", "airplane", ("jet",))),
    ("127:123", P("a telephone ringing", "telephone ringing")),
    ("127:124", P("a bird tweeting", "birds chirping")),
    ("2:127", FICTIONAL),  # Lazergun
    ("8:125", FICTIONAL),  # Starship
    ("*", AMBIGUOUS),  # Fret Noise, Fl. Key Click, Gtr. Cut Noise, String Slap, Scratch...
)
