"""Deterministic sandbox data: the same config gives the same catalog, users and libraries.

Everything comes from `random.Random` streams seeded with strings (stable across Python
versions and processes). Anime are drawn one after another from one stream, so anime N is the
same whatever the catalog size. Some ids are given an "archetype" (by `id % 20`) so that the
awkward real-world cases Kitsu serves are always present, however the dice fall.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from kitsu_sync.sandbox.config import SandboxConfig
from kitsu_sync.sandbox.records import (
    DAY_MS,
    EPOCH_ORDINAL,
    LIBRARY_STATUSES,
    TITLE_ABBREVIATION,
    TITLE_CANONICAL_EN,
    TITLE_EN_MISSING,
    TITLE_EN_NULL,
    TITLE_EN_US,
    TITLE_ZH_CN,
    Anime,
    Category,
    Genre,
    LibraryEntry,
    Manga,
    Media,
    User,
    slugify,
)

# Seeded data is laid out around this moment (2025-06-01T00:00:00Z) rather than "now", so that
# it is identical on every run; writes made later carry real timestamps.
DATA_EPOCH_MS = 1_748_736_000_000
DATA_EPOCH_DAY = DATA_EPOCH_MS // DAY_MS
ENTRY_ID_BASE = 35_000_000
# 2013-02-20T16:00:13Z: the oldest createdAt on Kitsu, when Hummingbird seeded its catalog.
EARLIEST_MS = 1_361_376_013_000
USER_ID_BASE = 1000

R18, NO_EN, EN_NULL, UNRATED, ONGOING, UPCOMING, UNRELEASED, TBA = range(8)
NO_MAPPINGS, NO_IMAGES, OLD_TVDB, UNICODE, AIRING = 8, 9, 10, 11, 13

GENRES = (
    "Action",
    "Adventure",
    "Comedy",
    "Drama",
    "Slice of Life",
    "Fantasy",
    "Magic",
    "Supernatural",
    "Horror",
    "Mystery",
    "Psychological",
    "Romance",
    "Sci-Fi",
    "Mecha",
    "Sports",
    "Music",
    "School",
    "Historical",
    "Military",
    "Thriller",
)
# (title, parent index or None, nsfw)
CATEGORIES = (
    ("Action", None, False),
    ("Fantasy World", None, False),
    ("Science Fiction", None, False),
    ("Space", 2, False),
    ("Cyberpunk", 2, False),
    ("Comedy", None, False),
    ("Parody", 5, False),
    ("Romance", None, False),
    ("School Life", None, False),
    ("Mystery", None, False),
    ("Detective", 9, False),
    ("Music", None, False),
    ("Sports", None, False),
    ("Historical", None, False),
    ("Ecchi", None, True),
    ("Adult Themes", None, True),
)

EN_FIRST = (
    "Crimson",
    "Silent",
    "Starlight",
    "Iron",
    "Hidden",
    "Last",
    "Eternal",
    "Moonlit",
    "Paper",
    "Clockwork",
    "Wandering",
    "Frozen",
    "Golden",
    "Shadow",
    "Spirit",
    "Summer",
    "Broken",
    "Celestial",
    "Little",
    "Naïve",
)
EN_SECOND = (
    "Blade",
    "Academy",
    "Garden",
    "Chronicle",
    "Requiem",
    "Odyssey",
    "Detective",
    "Symphony",
    "Kingdom",
    "Witch",
    "Pilot",
    "Circus",
    "Samurai",
    "Café",
    "Archive",
    "Express",
    "Horizon",
    "Lantern",
    "Orchestra",
    "Frontier",
)
ROMAJI_FIRST = (
    "Kaze",
    "Sora",
    "Yume",
    "Hoshi",
    "Tsuki",
    "Kōri",
    "Hana",
    "Yoru",
    "Ōkami",
    "Kage",
    "Mizu",
    "Hikari",
    "Tetsu",
    "Kami",
    "Yuki",
    "Shōjo",
)
ROMAJI_SECOND = (
    "no Tsurugi",
    "Gakuen",
    "Monogatari",
    "no Tabi",
    "Senki",
    "no Yakusoku",
    "Tantei",
    "Kōkyōkyoku",
    "no Ōkoku",
    "no Majo",
    "Kishi",
    "Sākasu",
    "Samurai",
    "Kissa",
    "Kiroku",
    "Ressha",
)
KANJI_FIRST = (
    "風",
    "空",
    "夢",
    "星",
    "月",
    "氷",
    "花",
    "夜",
    "狼",
    "影",
    "水",
    "光",
    "鉄",
    "神",
    "雪",
    "少女",
)
KANJI_SECOND = (
    "の剣",
    "学園",
    "物語",
    "の旅",
    "戦記",
    "の約束",
    "探偵",
    "交響曲",
    "の王国",
    "の魔女",
    "騎士",
    "サーカス",
    "侍",
    "喫茶",
    "記録",
    "列車",
)
SEQUELS = ("", "", "", "", " 2nd Season", " Season 3", ": Final Act", " Movie", " OVA")
SUBTYPES = (("TV", 55), ("movie", 12), ("OVA", 10), ("ONA", 10), ("special", 10), ("music", 3))
AGE_GUIDES = {
    "G": ("All Ages", None),
    "PG": ("Teens 13 or older", "Children"),
    "R": ("17+ (violence & profanity)", "Violence, Profanity"),
    "R18": ("Explicit Sexual Content", None),
}
NOTES = (
    "Rewatched with friends 🎉",
    "Ending felt rushed — still great",
    "観た。最高だった",
    "Ça m'a beaucoup plu",
    'Dub > sub? "Debatable" & <still> undecided',
    "line one\nline two",
    "Episode 7 is the best one",
    "Ñandú-level weird, in a good way",
)

DEMO_LOGIN = ("demo", "Demo Watcher", "demo@example.test", "demo-password")
SPECIAL_PASSWORD = "p&ss=w0rd +%ü"


@dataclass(frozen=True)
class SeededCredential:
    """A seeded account's login: `login` is the email; the slug works too, the name does not."""

    index: int
    user_id: str
    slug: str
    name: str
    email: str
    password: str

    @property
    def login(self) -> str:
        return self.email


@dataclass
class SeedData:
    genres: list[Genre]
    categories: list[Category]
    anime: list[Anime]
    manga: list[Manga]
    users: list[User]
    entries: list[LibraryEntry]


def user_fields(index: int) -> tuple[str, str, str, str]:
    """(slug, name, email, password) of seeded user `index` (1-based)."""
    if index == 1:
        return DEMO_LOGIN
    password = SPECIAL_PASSWORD if index == 2 else f"sandbox-password-{index}"
    return f"user{index}", f"Sandbox User {index}", f"user{index}@example.test", password


def seeded_credentials(config: SandboxConfig) -> list[SeededCredential]:
    """The logins of every seeded user, demo account first."""
    credentials = []
    for index in range(1, config.users + 1):
        slug, name, email, password = user_fields(index)
        credentials.append(
            SeededCredential(index, str(USER_ID_BASE + index), slug, name, email, password)
        )
    return credentials


def _day(year: int, month: int, day: int) -> int:
    return date(year, month, day).toordinal() - EPOCH_ORDINAL


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    roll = rng.random() * sum(weight for _, weight in choices)
    for value, weight in choices:
        roll -= weight
        if roll < 0:
            return value
    return choices[-1][0]


def build_genres() -> list[Genre]:
    base = EARLIEST_MS
    return [
        Genre(i, name, slugify(name), base + i * 1_013, 1_468_783_856_164)
        for i, name in enumerate(GENRES, start=1)
    ]


def build_categories() -> list[Category]:
    categories = []
    for i, (title, parent, nsfw) in enumerate(CATEGORIES, start=1):
        categories.append(
            Category(
                i,
                title,
                slugify(title),
                f"Titles in the {title.lower()} category.",
                nsfw,
                None if parent is None else parent + 1,
                1_497_000_000_000 + i * 7_919,
            )
        )
    for category in categories:
        if category.parent_id is not None:
            categories[category.parent_id - 1].child_count += 1
    return categories


def _landmarks() -> dict[int, dict[str, object]]:
    """Two real titles at their real Kitsu ids, matching the examples in docs/kitsu-api.md §7."""
    return {
        1: {
            "slug": "cowboy-bebop",
            "titles": {
                "en": "Cowboy Bebop",
                "en_jp": "Cowboy Bebop",
                "ja_jp": "カウボーイビバップ",
            },
            "canonical": "Cowboy Bebop",
            "abbreviated": ["COWBOY BEBOP"],
            "description": (
                "In the year 2071, humanity has colonized several of the planets and moons of "
                "the solar system. A crew of bounty hunters chases criminals across it."
            ),
            "average": 8223,
            "user_count": 159_386,
            "favorites": 5118,
            "start": _day(1998, 4, 3),
            "end": _day(1999, 4, 24),
            "age": "R",
            "guide": "17+ (violence & profanity)",
            "subtype": "TV",
            "episodes": 26,
            "length": 25,
            "youtube": "qig4KOK2R2g",
            "created": 1_361_376_013_609,
            "updated": 1_741_694_409_269,
            "genres": (1, 2, 3, 4, 13),
            "categories": (1, 3, 4),
            "mappings": ((0, "1"), (1, "1"), (2, "23"), (3, "76885")),
        },
        12: {
            "slug": "one-piece",
            "titles": {"en": "One Piece", "en_jp": "One Piece", "ja_jp": "ONE PIECE"},
            "canonical": "One Piece",
            "abbreviated": ["ONE PIECE"],
            "description": "Gol D. Roger was known as the Pirate King. His treasure waits.",
            "average": 8317,
            "user_count": 190_532,
            "favorites": 14_120,
            "start": _day(1999, 10, 20),
            "end": None,
            "age": "PG",
            "guide": "Teens 13 or older",
            "subtype": "TV",
            "episodes": None,
            "length": 24,
            "youtube": None,
            "created": 1_361_376_025_109,
            "updated": 1_748_649_600_000,
            "genres": (1, 2, 3, 6),
            "categories": (1, 2),
            "mappings": ((0, "21"), (1, "21"), (2, "69"), (3, "81797")),
        },
    }


def media_status(start_day: int | None, end_day: int | None, today: int) -> str:
    """Kitsu's Media#status, computed from the dates."""
    if start_day is None and end_day is None:
        return "tba"
    if end_day is not None and end_day < today:
        return "finished"
    if start_day is not None and start_day <= today:
        return "current"
    if start_day is not None and start_day <= today + 90:
        return "upcoming"
    return "unreleased"


def _titles(rng: random.Random, archetype: int, shared: dict) -> tuple[str, str, str, int]:
    """(romaji, english, native, title_flags); equal strings are shared to keep records small."""
    first, second = rng.randrange(len(ROMAJI_FIRST)), rng.randrange(len(ROMAJI_SECOND))
    sequel = SEQUELS[rng.randrange(len(SEQUELS))]
    romaji = f"{ROMAJI_FIRST[first]} {ROMAJI_SECOND[second]}{sequel}"
    english = f"The {EN_FIRST[rng.randrange(len(EN_FIRST))]} {EN_SECOND[second]}{sequel}"
    if archetype == UNICODE:
        english = f"{english} ☆ Idol★Stage"
    native = KANJI_FIRST[first] + KANJI_SECOND[second]
    flags = 0
    if archetype == EN_NULL:
        flags |= TITLE_EN_NULL
    elif archetype == NO_EN:
        flags |= TITLE_EN_MISSING
    if rng.random() < 0.08:
        flags |= TITLE_EN_US
    if rng.random() < 0.05:
        flags |= TITLE_ZH_CN
    if not flags & (TITLE_EN_MISSING | TITLE_EN_NULL) and rng.random() < 0.15:
        flags |= TITLE_CANONICAL_EN
    if rng.random() < 0.3:
        flags |= TITLE_ABBREVIATION
    return (
        shared.setdefault(romaji, romaji),
        shared.setdefault(english, english),
        shared.setdefault(native, native),
        flags,
    )


def _dates(rng: random.Random, archetype: int, subtype: str, episodes: int | None) -> tuple:
    """(start_day, end_day, episode_count, tba) for one anime."""
    today = DATA_EPOCH_DAY
    if archetype == TBA:
        return None, None, None, "TBA" if rng.random() < 0.5 else None
    if archetype == UNRELEASED:
        return today + 100 + rng.randrange(500), None, episodes, "2026"
    if archetype == UPCOMING:
        return today + 1 + rng.randrange(88), None, None if rng.random() < 0.5 else episodes, None
    if archetype == ONGOING:
        return today - 20 - rng.randrange(2000), None, None, None
    if archetype == AIRING and subtype == "TV":
        count = episodes or 12
        start = today - 7 * (2 + rng.randrange(8))
        return start, start + 7 * (count - 1) + 7 * 10, count, None
    start = _day(1990, 1, 1) + rng.randrange(today - 400 - _day(1990, 1, 1))
    end = start + 7 * (episodes - 1) if subtype in ("TV", "ONA") and episodes else start
    return start, end, episodes, None


def _episodes(rng: random.Random, subtype: str) -> tuple[int, int]:
    """(episode_count, episode_length in minutes)."""
    if subtype == "TV":
        return (12, 13, 24, 25, 26, 50, 12, 11, 10, 64)[rng.randrange(10)], 24
    if subtype == "movie":
        return 1, 80 + rng.randrange(60)
    if subtype == "OVA":
        return 1 + rng.randrange(6), 25 + rng.randrange(6)
    if subtype == "ONA":
        return 6 + rng.randrange(19), 3 + rng.randrange(22)
    if subtype == "special":
        return 1 + rng.randrange(3), 5 + rng.randrange(20)
    return 1, 3 + rng.randrange(3)


def _mapping_sites(rng: random.Random, archetype: int, subtype: str) -> int:
    """Bit mask over MAPPING_SITES: which sites this anime is linked to."""
    if archetype == NO_MAPPINGS:
        return 0
    sites = 0
    for site, chance in ((0, 0.85), (1, 0.75), (2, 0.55)):
        if rng.random() < chance:
            sites |= 1 << site
    if subtype == "TV" and rng.random() < 0.4:
        sites |= 1 << 3
    # The old-style `thetvdb` site still shows up on some titles.
    if archetype == OLD_TVDB or rng.random() < 0.03:
        sites |= 1 << 4
    return sites


def build_anime(config: SandboxConfig) -> list[Anime]:
    rng = random.Random(f"kitsu-sandbox:{config.seed}:anime")
    landmarks = _landmarks()
    shared: dict = {}
    catalog: list[Anime] = []
    for anime_id in range(1, config.anime_count + 1):
        archetype = anime_id % 20
        # Draw everything even for landmarks, so later anime do not depend on which ids are real.
        romaji, english, native, title_flags = _titles(rng, archetype, shared)
        subtype = _weighted(rng, SUBTYPES)
        episodes, length = _episodes(rng, subtype)
        start, end, episodes_known, tba = _dates(rng, archetype, subtype, episodes)
        unrated = archetype in (UNRATED, UPCOMING, UNRELEASED, TBA) or rng.random() < 0.04
        average = None if unrated else 3000 + rng.randrange(6000) + rng.randrange(100)
        spread = rng.random()
        user_count = 1 + rng.randrange(200) if unrated else 200 + int(200_000 * spread**4)
        age = (
            "R18"
            if archetype == R18
            else _weighted(rng, (("G", 10), ("PG", 45), ("R", 40), ("", 5)))
        )
        guide_pick = rng.random()
        created = EARLIEST_MS + rng.randrange(DATA_EPOCH_MS - EARLIEST_MS - DAY_MS)
        updated = created + rng.randrange(DATA_EPOCH_MS - created)
        genres = tuple(sorted(rng.sample(range(1, len(GENRES) + 1), 1 + rng.randrange(4))))
        categories = tuple(sorted(rng.sample(range(1, 14), 1 + rng.randrange(3))))
        mapping_sites = _mapping_sites(rng, archetype, subtype)
        noise = rng.getrandbits(62)
        image_flags = 0 if archetype == NO_IMAGES else 1 | (2 if rng.random() < 0.7 else 0)
        cover_offset = 10 * rng.randrange(41)
        guide_pair = AGE_GUIDES.get(age, (None, None))
        guide = guide_pair[0] if guide_pick < 0.8 else guide_pair[1]

        land = landmarks.get(anime_id)
        if land is not None:
            subtype, average, user_count = land["subtype"], land["average"], land["user_count"]
            start, end, episodes_known = land["start"], land["end"], land["episodes"]
            length, age, guide, tba = land["length"], land["age"], land["guide"], None
            created, updated = land["created"], land["updated"]
            genres, categories = land["genres"], land["categories"]
            image_flags = 3
        if age == "R18":
            categories = (*categories, 15)

        anime = Anime()
        anime.id = anime_id
        anime.landmark = land
        anime.romaji, anime.english, anime.native = romaji, english, native
        anime.title_flags = title_flags
        anime.subtype = subtype
        anime.average_rating = average
        anime.user_count = user_count
        anime.start_day, anime.end_day = start, end
        anime.status = media_status(start, end, DATA_EPOCH_DAY)
        anime.tba = tba
        airing = anime.status == "current" and (end is None or end > DATA_EPOCH_DAY)
        anime.next_release = (
            DATA_EPOCH_MS + DAY_MS * (1 + anime_id % 6) + 15 * 3_600_000 if airing else None
        )
        anime.episode_count = episodes_known
        anime.episode_length = None if archetype == TBA and land is None else length
        anime.age_rating = age or None
        anime.age_rating_guide = guide
        anime.created_at, anime.updated_at = created, updated
        anime.genre_ids = shared.setdefault(genres, genres)
        anime.category_ids = shared.setdefault(categories, categories)
        anime.mapping_sites = mapping_sites
        anime.noise = noise
        anime.image_flags = image_flags
        anime.cover_offset = cover_offset
        anime.popularity_rank = None
        anime.rating_rank = None
        catalog.append(anime)
    _rank(catalog)
    return catalog


def _rank(catalog: list[Anime] | list[Manga]) -> None:
    by_users = sorted(catalog, key=lambda m: (-m.user_count, m.id))
    for rank, media in enumerate(by_users, start=1):
        media.popularity_rank = rank
    rated = sorted(
        (m for m in catalog if m.average_rating is not None),
        key=lambda m: (-m.average_rating, m.id),
    )
    for rank, media in enumerate(rated, start=1):
        media.rating_rank = rank


def build_manga(config: SandboxConfig) -> list[Manga]:
    rng = random.Random(f"kitsu-sandbox:{config.seed}:manga")
    shared: dict = {}
    catalog: list[Manga] = []
    for manga_id in range(1, config.manga_count + 1):
        manga = Manga()
        manga.id = manga_id
        manga.landmark = None
        archetype = manga_id % 20 if manga_id % 20 in (NO_EN, EN_NULL) else -1
        manga.romaji, manga.english, manga.native, manga.title_flags = _titles(
            rng, archetype, shared
        )
        manga.subtype = ("manga", "manga", "manga", "novel", "manhwa", "oneshot")[rng.randrange(6)]
        ongoing = rng.random() < 0.3
        manga.chapter_count = None if ongoing else 20 + rng.randrange(300)
        manga.volume_count = None if ongoing else 1 + (manga.chapter_count or 0) // 9
        manga.serialization = ("Weekly Shōnen Jump", "Afternoon", "Big Comic Spirits")[manga_id % 3]
        start = _day(1985, 1, 1) + rng.randrange(DATA_EPOCH_DAY - 800 - _day(1985, 1, 1))
        manga.start_day = start
        end = None if ongoing else min(start + 365 + rng.randrange(3000), DATA_EPOCH_DAY - 1)
        manga.end_day = end
        manga.status = media_status(start, end, DATA_EPOCH_DAY)
        manga.tba = None
        manga.average_rating = None if rng.random() < 0.1 else 4000 + rng.randrange(5000)
        manga.user_count = 50 + rng.randrange(40_000)
        manga.age_rating = ("PG", "R", "G")[rng.randrange(3)]
        manga.age_rating_guide = None
        manga.created_at = EARLIEST_MS + rng.randrange(300_000_000_000)
        manga.updated_at = manga.created_at + rng.randrange(DATA_EPOCH_MS - manga.created_at)
        genres = tuple(sorted(rng.sample(range(1, len(GENRES) + 1), 1 + rng.randrange(3))))
        manga.genre_ids = shared.setdefault(genres, genres)
        manga.category_ids = ()
        manga.noise = rng.getrandbits(62)
        manga.image_flags = 1
        manga.cover_offset = 0
        manga.popularity_rank = manga.rating_rank = None
        catalog.append(manga)
    _rank(catalog)
    return catalog


def build_users(config: SandboxConfig) -> list[User]:
    users = []
    for index in range(1, config.users + 1):
        rng = random.Random(f"kitsu-sandbox:{config.seed}:user:{index}")
        slug, name, email, password = user_fields(index)
        user = User()
        user.index = index
        user.id = USER_ID_BASE + index
        user.slug, user.name, user.email, user.password = slug, name, email, password
        # The demo account sees R18 titles (so its whole library imports); user 2 keeps Kitsu's
        # default SFW filter on, so it cannot see others' (or its own) R18 entries.
        user.sfw_filter = index % 2 == 0
        user.rating_system = ("advanced", "simple", "regular")[index % 3]
        user.title_language_preference = ("canonical", "romanized", "english")[index % 3]
        user.created_at = (
            DATA_EPOCH_MS - DAY_MS * (400 + rng.randrange(3000)) + rng.randrange(DAY_MS)
        )
        user.updated_at = DATA_EPOCH_MS - rng.randrange(DAY_MS * 30)
        user.about = "Watching everything, one season at a time." if index == 1 else ""
        user.location = ("Tōkyō", "Berlin", "", "São Paulo")[index % 4]
        user.waifu_or_husbando = ("Waifu", "Husbando", None)[index % 3]
        user.birthday = None if index % 2 else f"199{index % 10}-0{1 + index % 9}-1{index % 10}"
        user.gender = (None, "secret", "she/her", "he/him")[index % 4]
        user.life_spent_on_anime = 0
        user.time_zone = ("Europe/Berlin", "America/New_York", "Asia/Tokyo")[index % 3]
        user.country = ("DE", "US", "JP")[index % 3]
        user.language = "en"
        user.theme = ("light", "dark")[index % 2]
        users.append(user)
    return users


def _progress_for(rng: random.Random, status: str, count: int | None) -> int:
    if status == "planned":
        return 0
    if status == "completed":
        return count if count is not None else 1 + rng.randrange(50)
    cap = count if count is not None else 40
    return rng.randrange(max(cap, 1)) if cap > 1 else 0


def build_library(
    config: SandboxConfig,
    user: User,
    anime: list[Anime],
    manga: list[Manga],
    next_id: int,
) -> list[LibraryEntry]:
    """One user's library: `config.entries` entries, with every awkward case when it fits."""
    rng = random.Random(f"kitsu-sandbox:{config.seed}:library:{user.index}")
    picks = _library_picks(rng, config.entries, user, anime, manga)
    span = max(DATA_EPOCH_MS - user.created_at, DAY_MS)
    entries = [
        _library_entry(rng, user, media, position, next_id + position, span)
        for position, media in enumerate(picks)
    ]
    if config.entries >= 10 and not any(e.reconsuming for e in entries):
        # A rewatch in progress: a "current" entry that has been completed before.
        rewatch = next((e for e in entries if e.status == "current"), None)
        if rewatch is not None:
            rewatch.reconsuming, rewatch.reconsume_count = True, max(rewatch.reconsume_count, 1)
    return entries


def _library_picks(
    rng: random.Random, total: int, user: User, anime: list[Anime], manga: list[Manga]
) -> list[Media]:
    """The titles of a library, in list order: sampled anime with one manga in every twelve."""
    manga_total = min(len(manga), total // 12 if total >= 12 else (1 if total >= 6 else 0))
    anime_total = min(total - manga_total, len(anime))
    anime_ids = rng.sample(range(1, len(anime) + 1), anime_total)
    if anime_total >= 20:
        _place_awkward_titles(anime_ids, user, len(anime))
    picks: list[Media] = [anime[i - 1] for i in anime_ids]
    for manga_id in rng.sample(range(1, len(manga) + 1), manga_total):
        picks.insert(rng.randrange(len(picks) + 1), manga[manga_id - 1])
    return picks


def _place_awkward_titles(anime_ids: list[int], user: User, anime_count: int) -> None:
    """Swap any missing awkward kind of title into the sample, so each gets one entry."""
    block = 20 * (1 + user.index % 3)
    wanted = [
        block + archetype
        for archetype in (R18, ONGOING, NO_MAPPINGS, NO_EN, EN_NULL, UNRATED)
        if block + archetype <= anime_count
    ]
    present = set(anime_ids)
    missing = [anime_id for anime_id in wanted if anime_id not in present]
    free_slots = [i for i, anime_id in enumerate(anime_ids) if anime_id not in wanted]
    for slot, anime_id in zip(free_slots[1::2], missing, strict=False):
        anime_ids[slot] = anime_id


def _library_entry(
    rng: random.Random, user: User, media: Media, position: int, entry_id: int, span: int
) -> LibraryEntry:
    """The entry at this position of a user's library; the first ten cover the awkward cases."""
    status = (
        LIBRARY_STATUSES[position]
        if position < 5
        else _weighted(
            rng,
            (
                ("current", 15),
                ("planned", 25),
                ("completed", 40),
                ("on_hold", 8),
                ("dropped", 12),
            ),
        )
    )
    if media.status in ("upcoming", "unreleased", "tba") and status != "planned":
        status = "planned"
    count = media.unit_count
    entry = LibraryEntry()
    entry.id = entry_id
    entry.user_id = user.id
    entry.kind = media.kind
    entry.media_id = media.id
    entry.nsfw = media.nsfw
    entry.status = status
    entry.progress = _progress_for(rng, status, count)
    entry.volumes_owned = rng.randrange(5) if media.kind == "manga" else 0
    rewatch = rng.random()
    entry.reconsuming = status == "current" and (position == 7 or rewatch < 0.08)
    entry.reconsume_count = (
        1 + rng.randrange(3)
        if entry.reconsuming or (status == "completed" and rewatch < 0.12)
        else 0
    )
    entry.notes = NOTES[rng.randrange(len(NOTES))] if position == 3 or rng.random() < 0.18 else None
    entry.private = position == 9 or rng.random() < 0.06
    entry.reaction_skipped = ("unskipped", "unskipped", "unskipped", "skipped", "ignored")[
        rng.randrange(5)
    ]
    rated = status in ("completed", "dropped", "current") and rng.random() < 0.75
    if position == 2:
        entry.rating_twenty = None
    elif position in (4, 6):
        entry.rating_twenty = 2 if position == 4 else 20
    else:
        entry.rating_twenty = 2 + rng.randrange(19) if rated else None
    _set_entry_dates(rng, entry, user.created_at, span)
    return entry


def _set_entry_dates(
    rng: random.Random, entry: LibraryEntry, user_created_at: int, span: int
) -> None:
    """Created after its user, then updated, started, finished and progressed in that order."""
    status = entry.status
    entry.created_at = user_created_at + rng.randrange(span)
    entry.updated_at = entry.created_at + rng.randrange(max(DATA_EPOCH_MS - entry.created_at, 1))
    legacy = rng.random() < 0.1  # entries from before Kitsu tracked start dates
    entry.started_at = (
        None if status == "planned" or legacy else entry.created_at + rng.randrange(DAY_MS * 3)
    )
    entry.finished_at = (
        entry.updated_at - rng.randrange(DAY_MS) if status == "completed" and not legacy else None
    )
    if entry.finished_at is not None and entry.started_at is not None:
        entry.finished_at = max(entry.finished_at, entry.started_at)
    entry.progressed_at = None if status == "planned" and entry.progress == 0 else entry.updated_at


def generate(config: SandboxConfig) -> SeedData:
    anime = build_anime(config)
    manga = build_manga(config)
    users = build_users(config)
    entries: list[LibraryEntry] = []
    next_id = ENTRY_ID_BASE + 1
    for user in users:
        library = build_library(config, user, anime, manga, next_id)
        entries.extend(library)
        next_id += len(library)
    categories = build_categories()
    for media in anime:
        for category_id in media.category_ids:
            categories[category_id - 1].total_media_count += 1
    return SeedData(build_genres(), categories, anime, manga, users, entries)
