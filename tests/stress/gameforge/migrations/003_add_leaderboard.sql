-- 003_add_leaderboard.sql
CREATE VIEW public.leaderboard AS
SELECT p.username, p.xp + coalesce(sum(a.points), 0) AS score
FROM public.players p
LEFT JOIN public.player_achievements pa ON pa.player_id = p.id
LEFT JOIN public.achievements a ON a.id = pa.achievement_id
GROUP BY p.id, p.username, p.xp;
